"""Retraining jobs: status, progress, attempts, errors and the resulting version; cancel."""

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError


def progress(job: dict) -> str:
    step = job.get("progress") or {}
    if "epoch" in step and "epochs" in step:
        return f"epoch {step['epoch']}/{step['epochs']}"
    return ""


st.title("Retraining jobs")
state.show_flash()
found = data.job_overview(state.home(), state.user())
if not found:
    st.info("No retraining jobs. A failing gate rule with `on_fail: retrain` queues one.")
    st.stop()
st.dataframe(pd.DataFrame([{"id": j["id"], "model": j["model"], "from version": j["version"], "status": j["status"],
                            "progress": progress(j), "strategies": "+".join(j["strategies"]),
                            "rules": ", ".join(j["failing_rules"]), "attempts": j["attempts"],
                            "resulting version": j.get("result_version") or "", "error": j.get("error") or "",
                            "updated": j["updated_at"]} for j in found]), hide_index=True, width="stretch")
running = [j for j in found if j["status"] == "running"]
for job in running:
    step = job.get("progress") or {}
    if step.get("epochs"):
        st.progress(min(1.0, step["epoch"] / step["epochs"]),
                    text=f"{job['id']} ({job['model']} from v{job['version']}): {progress(job)}")
active = [j["id"] for j in found if j["status"] in ("waiting_review", "queued", "running")]
if active and state.role() in ("engineer", "admin"):
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
