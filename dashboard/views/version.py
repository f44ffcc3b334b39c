"""One version: performance, calibration (reliability), fairness per group against the policy, drift
(per feature, distributions, over production batches), comparison with another version, gate and lineage."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from governance.errors import GovernError
from governance.roles import Action

st.title("Model version")
state.show_flash()
home, actor = state.home(), state.user()
model, version = data.pick_version("version")
if state.may(Action.EVALUATE) and st.button("Evaluate again", key="version.evaluate",
                                                        help="A new evaluation with 200 bootstrap resamples."):
    with st.status(f"Evaluating {model} version {version}…", expanded=True) as progress:
        st.write("Computing performance, calibration, fairness and drift with bootstrap intervals…")
        try:
            done, _ = state.service().evaluate(model=model, version=version)
        except GovernError as exc:
            progress.update(label="Evaluation failed", state="error")
            st.error(state.plain(str(exc)))
            st.stop()
        progress.update(label=f"Evaluation {done.id} stored", state="complete")
    state.changed()
    state.flash(f"Evaluation {done.id} stored.")
    st.rerun()
try:
    evaluation, metrics = data.evaluation(home, actor, model, version)
except GovernError as exc:
    st.warning(str(exc))
    st.stop()
gate = data.latest_gate(home, actor, model, version)


def table(family: str, exclude: tuple[str, ...] = ("reliability_bin",)) -> pd.DataFrame:
    return pd.DataFrame([{"metric": r.metric, "feature": r.feature or "", "group": r.group or "", "value": r.value,
                          "95% low": r.ci_low, "95% high": r.ci_high, "n": r.n}
                         for r in metrics.records if r.family == family and r.metric not in exclude])


def rule_threshold(metric: str, feature: str | None) -> float | None:
    """The threshold the latest gate's policy set for the fairness `metric` on `feature` (or on every feature)."""
    for result in gate.decision.results if gate else ():
        if result.metric == f"fairness.{metric}" and result.feature in (feature, "every", None):
            return result.threshold
    return None


st.caption(f"Evaluation {evaluation.id} · {metrics.params.get('rows')} rows · engine {evaluation.engine}")
tabs = st.tabs(["Performance", "Calibration", "Fairness", "Drift", "Compare", "Gate and lineage"])
with tabs[0]:
    st.dataframe(table("performance"), hide_index=True, width="stretch")
    probed = [r for r in metrics.records if r.family == "sanity"]
    if probed:
        st.caption("How well each column alone separates the label (ROC AUC, 0.5 = not at all): a column near 1 "
                   "is usually the outcome leaking in.")
        st.dataframe(pd.DataFrame([{"column": r.feature, "ROC AUC alone": r.value, "rows": r.n,
                                    "note": r.detail.get("reason", "")}
                                   for r in sorted(probed, key=lambda r: -(r.value or 0))]),
                     hide_index=True, width="stretch")
with tabs[1]:
    ece = metrics.find("calibration", "ece")
    if ece is not None and ece.value is not None:
        interval = f" (95% interval {ece.ci_low:.4f} – {ece.ci_high:.4f})" if ece.ci_low is not None else ""
        st.metric("Expected calibration error", f"{ece.value:.4f}", help="15 equal-width bins, as torchmetrics.")
        st.caption(f"ECE {ece.value:.4f}{interval}")
    st.dataframe(table("calibration"), hide_index=True, width="stretch")
    bins = pd.DataFrame([{"mean score": r.detail["mean_score"], "observed rate": r.value, "rows": r.n,
                          "group": f"{r.feature}={r.group}" if r.group else "all"}
                         for r in metrics.records if r.metric == "reliability_bin"])
    if not bins.empty:
        groups = st.multiselect("Groups", sorted(bins["group"].unique()), default=["all"], key="version.groups")
        shown = bins[bins["group"].isin(groups)]
        diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(strokeDash=[4, 4]).encode(x="x", y="y")
        points = alt.Chart(shown).mark_line(point=True).encode(x="mean score", y="observed rate", color="group",
                                                               tooltip=["group", "rows"])
        st.altair_chart(diagonal + points, width="stretch")
with tabs[2]:
    grouped = [r for r in metrics.records if r.group is not None and r.metric != "reliability_bin"
               and r.metric != "count"]
    if not grouped:
        st.info("No sensitive features were ingested with these predictions (`--sensitive`).")
    else:
        per_group = st.selectbox("Per-group metric", list(dict.fromkeys(r.metric for r in grouped)),
                                 key="version.group_metric")
        frame = pd.DataFrame([{"feature": r.feature, "group": r.group, "value": r.value, "low": r.ci_low,
                               "high": r.ci_high, "n": r.n} for r in grouped if r.metric == per_group])
        st.altair_chart(charts.bars_with_intervals(frame, category="group", value="value", low="low", high="high",
                                                   column="feature"))
        gaps = [r for r in metrics.records if r.family == "fairness" and r.group is None]
        gap_metric = st.selectbox("Parity measure", list(dict.fromkeys(r.metric for r in gaps)), key="version.gap")
        gap_frame = pd.DataFrame([{"feature": r.feature, "value": r.value, "low": r.ci_low, "high": r.ci_high,
                                   "threshold": rule_threshold(gap_metric, r.feature)}
                                  for r in gaps if r.metric == gap_metric])
        st.altair_chart(charts.bars_with_intervals(gap_frame, category="feature", value="value", low="low",
                                                   high="high", threshold="threshold"), width="stretch")
        st.caption(f"Red ticks: the thresholds of {gate.policy_name} v{gate.policy_version} (the latest gate)."
                   if gap_frame["threshold"].notna().any()
                   else "No rule of the latest gate's policy bounds this measure.")
        st.dataframe(table("fairness"), hide_index=True, width="stretch")
with tabs[3]:
    drift_records = [r for r in metrics.records if r.family == "drift" and r.feature is not None]
    if not drift_records:
        st.info("No drift records: the evaluation had no reference set.")
    else:
        by_feature: dict[str, dict] = {}
        for r in drift_records:
            row = by_feature.setdefault(r.feature, {"feature": r.feature})
            if r.metric == "drift_score":
                row.update(score=r.value, method=r.detail.get("method_name", ""), note=r.detail.get("reason", ""))
            elif r.metric == "drift_detected":
                row["drifted"] = bool(r.value)
            elif r.metric == "psi":
                row["psi"] = r.value
        st.dataframe(pd.DataFrame(by_feature.values()), hide_index=True, width="stretch")
        psi = {r.feature: r.detail["distribution"] for r in drift_records
               if r.metric == "psi" and "distribution" in r.detail}
        if psi:
            feature = st.selectbox("Distribution of", list(psi), key="version.drift_feature")
            shares = psi[feature]
            frame = pd.DataFrame({"bin": shares["bins"] * 2,
                                  "share": shares["reference_share"] + shares["current_share"],
                                  "sample": ["reference"] * len(shares["bins"]) + ["current"] * len(shares["bins"])})
            st.altair_chart(alt.Chart(frame).mark_bar().encode(
                x=alt.X("bin:N", sort=shares["bins"]), xOffset="sample:N", y="share:Q", color="sample:N",
                tooltip=["bin", "sample", "share"]), width="stretch")
    timeline = data.drift_timeline(home, actor, model, version)
    st.subheader("Drift over production batches")
    if not timeline:
        st.info("No monitored production batches yet (`govern ingest … --split production`, then `govern monitor`).")
    else:
        frame = pd.DataFrame([{"batch": p.batch_time or p.ingested_at,
                               "feature": p.feature or "share of drifted columns",
                               "value": p.value, "method": p.method or ""} for p in timeline])
        shares_over_time = frame[frame["feature"] == "share of drifted columns"]
        st.altair_chart(alt.Chart(shares_over_time).mark_line(point=True).encode(
            x=alt.X("batch:T"), y=alt.Y("value:Q", title="share of drifted columns", scale=alt.Scale(domain=[0, 1]),
                                        axis=alt.Axis(format="%"))), width="stretch")
        scores = frame[frame["feature"] != "share of drifted columns"]
        st.altair_chart(alt.Chart(scores).mark_line(point=True).encode(
            x=alt.X("batch:T"), y=alt.Y("value:Q", title="drift score"), color="feature:N",
            tooltip=["batch", "feature", "value", "method"]), width="stretch")
with tabs[4]:
    others = [v.version for v in data.versions(home, actor, model) if v.version != version]
    if not others:
        st.info("This model has one version; there is nothing to compare with yet.")
    else:
        other = st.selectbox("Compare with version", others, index=len(others) - 1, key="version.compare")
        try:
            differences = data.compare(home, actor, model, other, version)
        except GovernError as exc:
            st.warning(str(exc))
        else:
            only = st.checkbox("Significant differences only", key="version.significant")
            frame = pd.DataFrame([{"family": d.family, "metric": d.metric, "feature": d.feature or "",
                                   "group": d.group or "", f"v{other}": d.a, f"v{version}": d.b,
                                   "difference": d.difference, "p-value": d.p_value,
                                   "significant": {True: "yes", False: "no", None: "no interval"}[d.significant]}
                                  for d in differences if d.significant or not only])
            st.caption(f"Version {version} minus version {other}; two-sided test at 5% on the bootstrap intervals "
                       "(conservative when both were scored on the same rows).")
            st.dataframe(frame, hide_index=True, width="stretch")
with tabs[5]:
    if gate:
        st.markdown(f"Latest gate: **{gate.verdict}**")
        st.text(f"Policy {gate.policy_name} v{gate.policy_version}, sha256 {gate.policy_sha256}, "
                f"decided {gate.created_at:%Y-%m-%d %H:%M} by {gate.created_by}")
        st.dataframe(pd.DataFrame([{"rule": r.rule_id, "status": r.status, "blocking": r.blocking,
                                    "value": r.observed, "judged": r.judged, "bound": r.bound,
                                    "comparison": r.comparison, "threshold": r.threshold,
                                    "reason": r.reason} for r in gate.decision.results]),
                     hide_index=True, width="stretch")
        with st.expander("Policy text"):
            st.code(data.gate_policy_text(home, actor, gate.id), language="yaml")
    else:
        st.info("Not gated yet.")
    chain = data.lineage(home, actor, model, version)
    st.text("Lineage: " + " ← ".join(v.version for v in chain))
