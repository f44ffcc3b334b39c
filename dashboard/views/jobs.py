"""Retraining jobs: status, progress, attempts, errors and the resulting version; cancel."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from governance.errors import GovernError
from governance.records import JobDetail, JobStatus
from governance.roles import Action


def progress(detail: JobDetail) -> str:
    step = detail.progress or {}
    if "epoch" in step and "epochs" in step:
        return (f"model {step['model']}: " if "model" in step else "") + f"epoch {step['epoch']}/{step['epochs']}"
    return ""


st.title("Retraining jobs")
state.show_flash()
found = data.job_overview(state.home(), state.user())
if not found:
    st.info("No retraining jobs. A failing gate rule with `on_fail: retrain` queues one.")
    st.stop()
st.dataframe(pd.DataFrame([{"id": d.job.id, "model": d.job.model, "from version": d.job.version,
                            "status": d.job.status, "progress": progress(d), "strategies": "+".join(d.job.strategies),
                            "rules": ", ".join(d.job.failing_rules), "attempts": d.job.attempts,
                            "resulting version": d.result_version or "", "error": d.error or "",
                            "updated": d.job.updated_at} for d in found]), hide_index=True, width="stretch")


def search_section(jobs: list[JobDetail]) -> None:
    """The candidates a job's search tried: accuracy against the flagged metric, the bound, the choice."""
    searched = [j for j in jobs if j.searched]
    if not searched:
        return
    st.subheader("What the retraining search tried")
    job_id = st.selectbox("Job", [j.job.id for j in searched], index=len(searched) - 1, key="jobs.search")
    detail = data.job(state.home(), state.user(), job_id)
    aim = detail.aim
    flagged = [rule for rule, spec in aim.items() if spec.get("flagged")] or list(aim)
    if not flagged:
        st.info("The policy had no blocking rule a model can change; candidates were compared on accuracy.")
        return
    rule = st.selectbox("Flagged rule", flagged, key="jobs.search.rule") if len(flagged) > 1 else flagged[0]
    spec = aim[rule]
    rows = charts.search_candidates(detail.candidates, rule)
    y = charts.search_y(rows)
    frame = rows.dropna(subset=[y, rule])
    bound = spec.get("max") if spec.get("max") is not None else spec.get("min")
    judged = {"point": "", "ci_upper": " (upper bound)", "ci_lower": " (lower bound)"}[spec.get("judge", "point")]
    if not frame.empty:
        st.altair_chart(charts.tradeoff(frame, x=rule, y=y, bound=bound,
                                        x_title=f"{spec['metric']}{judged} ({rule})"), width="stretch")
    chosen = next(c for c in detail.candidates if c["chosen"])
    st.caption("Judged on the held-out validation and calibration splits, which none of the candidates trained on. "
               f"Chosen: {state.plain(chosen['strategy'])}"
               f" ({charts.search_choice(chosen, rows)})"
               + (f"; resulting version {detail.result_version}." if detail.result_version else "."))
    st.dataframe(rows, hide_index=True, width="stretch")


search_section(found)
running = [d for d in found if d.job.status == JobStatus.RUNNING]
for detail in running:
    step = detail.progress or {}
    if step.get("epochs"):
        st.progress(min(1.0, step["epoch"] / step["epochs"]),
                    text=f"{detail.job.id} ({detail.job.model} from v{detail.job.version}): {progress(detail)}")
active = [d.job.id for d in found if d.job.status in (JobStatus.WAITING_REVIEW, JobStatus.QUEUED, JobStatus.RUNNING)]
if active and state.may(Action.EVALUATE):  # what cancelling a job needs
    job_id = st.selectbox("Job", active, key="jobs.job")
    if st.button("Cancel job", key="jobs.cancel", help="A running job stops at its next epoch."):
        try:
            state.service().cancel_job(job_id=job_id)
        except GovernError as exc:
            st.error(state.plain(str(exc)))
        else:
            state.changed()
            state.flash(f"Cancelled {job_id}.")
            st.rerun()
