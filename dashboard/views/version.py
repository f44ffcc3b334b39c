"""One version: performance, calibration (reliability), fairness per group, drift, gate and lineage."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError

st.title("Model version")
home, actor = state.home(), state.user()
model, version = data.pick_version("version")
try:
    evaluation, metrics = data.evaluation(home, actor, model, version)
except GovernError as exc:
    st.warning(str(exc))
    st.stop()


def table(family: str, exclude: tuple[str, ...] = ("reliability_bin",)) -> pd.DataFrame:
    return pd.DataFrame([{"metric": r.metric, "feature": r.feature or "", "group": r.group or "", "value": r.value,
                          "95% low": r.ci_low, "95% high": r.ci_high, "n": r.n}
                         for r in metrics.records if r.family == family and r.metric not in exclude])


st.caption(f"Evaluation {evaluation.id} · {metrics.params.get('rows')} rows · engine {evaluation.engine}")
tabs = st.tabs(["Performance", "Calibration", "Fairness", "Drift", "Gate and lineage"])
with tabs[0]:
    st.dataframe(table("performance"), hide_index=True, width="stretch")
with tabs[1]:
    st.dataframe(table("calibration"), hide_index=True, width="stretch")
    bins = pd.DataFrame([{"mean score": r.detail["mean_score"], "observed rate": r.value, "rows": r.n,
                          "group": f"{r.feature}={r.group}" if r.group else "all"}
                         for r in metrics.records if r.metric == "reliability_bin"])
    if not bins.empty:
        diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(strokeDash=[4, 4]).encode(x="x", y="y")
        points = alt.Chart(bins).mark_line(point=True).encode(x="mean score", y="observed rate", color="group",
                                                              tooltip=["group", "rows"])
        st.altair_chart(diagonal + points, width="stretch")
with tabs[2]:
    st.dataframe(table("fairness"), hide_index=True, width="stretch")
with tabs[3]:
    drift = pd.DataFrame([{"feature": r.feature or "", "metric": r.metric, "value": r.value,
                           "method": r.detail.get("method_name", ""), "note": r.detail.get("reason", "")}
                          for r in metrics.records if r.family == "drift"])
    if drift.empty:
        st.info("No drift records: the evaluation had no reference set.")
    else:
        st.dataframe(drift, hide_index=True, width="stretch")
with tabs[4]:
    gate = data.latest_gate(home, actor, model, version)
    if gate:
        st.write(f"Latest gate: **{gate.verdict}** under {gate.policy_name} v{gate.policy_version} "
                 f"(sha256 {gate.policy_sha256[:12]}…)")
        st.dataframe(pd.DataFrame([{"rule": r["rule_id"], "status": r["status"], "reason": r["reason"]}
                                   for r in gate.decision["results"]]), hide_index=True, width="stretch")
    else:
        st.info("Not gated yet.")
    chain = state.service().lineage(model=model, version=version)
    st.write("Lineage: " + " ← ".join(v.version for v in chain))
