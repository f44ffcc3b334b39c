"""One version at a glance: the latest gate's verdict in words (what failed, by how much, with intervals; what
warned and passed), then fairness per sensitive column against the policy's thresholds, performance, calibration,
drift, a comparison with another version, and the gate's rules with the lineage and the retraining search that
chose the version. Opens on `?model=NAME&version=V` when a link names one (the Overview's do)."""

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from evaluation.catalogue import METRICS
from governance.errors import GovernError
from governance.roles import Action

BOUND_WORDS = {"<=": "at most", ">=": "at least", "<": "below", ">": "above"}
JUDGED_ON = {"point": "point estimate", "ci_upper": "upper confidence bound", "ci_lower": "lower confidence bound"}
STATUS_WORDS = {"failed": "failed", "warned": "warned", "insufficient": "insufficient evidence", "passed": "passed"}
BADGE = {"failed": "red", "warned": "orange", "insufficient": "gray", "passed": "green"}
ROW_COLOURS = {"failed": "#ffcdd2", "warned": "#ffe0b2", "insufficient": "#eeeeee", "passed": "#c8e6c9"}
FAMILY_ORDER = ["fairness", "performance", "calibration", "sanity", "drift"]

st.title("Model version")
state.show_flash()
home, actor = state.home(), state.user()


def linked_version() -> tuple[str, str]:
    """The model and version pickers (data.pick_version's), opened on the version a link names
    (`?model=…&version=…`) when the page is entered with one; afterwards the pickers lead and the address follows
    them, so it can be shared. Their first index, not session state, carries the link: the pickers keep
    whatever the user chooses next."""
    names = [m.name for m in data.models(home, actor)]
    if not names:
        st.info("No models yet. Register one with `govern model register` or `govern train`.")
        st.stop()
    wanted_model, wanted_version = st.query_params.get("model"), st.query_params.get("version")
    arriving = wanted_model is not None and "version.model" not in st.session_state
    if arriving and wanted_model not in names:
        st.warning(f"There is no model {state.plain(wanted_model)}; showing another.")
    linked = arriving and wanted_model in names
    model = st.selectbox("Model", names, key="version.model",
                         index=names.index(wanted_model) if linked else data.busiest(home, actor, names))
    found = [v.version for v in data.versions(home, actor, model)]
    if not found:
        st.info("This model has no versions yet.")
        st.stop()
    if linked and wanted_version is not None and wanted_version not in found:
        st.warning(f"{state.plain(model)} has no version {state.plain(wanted_version)}; showing its newest.")
    version = st.selectbox("Version", found, key="version.version",
                           index=found.index(wanted_version) if linked and wanted_version in found else len(found) - 1)
    if (wanted_model, wanted_version) != (model, version):
        st.query_params.update({"model": model, "version": version})
    return model, version


model, version = linked_version()
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
judged = data.judged_values(home, actor, model, version)
chain = data.lineage(home, actor, model, version)
level = f"{float(metrics.params.get('confidence', 0.95)):.0%}"


def judged_by_place() -> dict[tuple[str, str | None, str | None], object]:
    """Each judged value by (metric, column, group); where two rules judge the same value, a blocking one."""
    found: dict = {}
    for j in judged:
        key = (j.metric, j.feature, j.group)
        if key not in found or (j.blocking_rule and not found[key].blocking_rule):
            found[key] = j
    return found


def words(metric: str) -> str:
    """'fairness.demographic_parity_difference' → 'demographic parity difference'."""
    return metric.split(".")[-1].replace("_", " ")


def place(j) -> str:
    return f"{j.feature}={j.group}" if j.group is not None else str(j.feature)


def standing(j) -> str:
    """How a judged value stands, in charts.STANDING's words."""
    if j is None:
        return "not judged"
    if j.status == "set aside":
        return "set aside"
    if j.status == "passed":
        return "passes"
    return "fails, blocks release" if j.blocking_rule else "fails, warning"


def bound(j) -> str:
    """'at most 0.1' (and what is judged when it is not the point estimate)."""
    on = "" if j.judge == "point" else f" ({JUDGED_ON[j.judge]})"
    return f"{BOUND_WORDS[j.comparison]} {j.threshold:.3g}{on}"


def interval(low: float | None, high: float | None) -> str:
    return f"{level} interval {low:.3g}–{high:.3g}" if low is not None and high is not None else "no interval"


def judged_text(j) -> str:
    """'race 0.112 (over the 3 groups with at least 50 rows; 95% interval 0.087–0.14), 0.0125 over the maximum'."""
    shown = j.observed if j.judge == "point" or j.observed is None else j.judged
    what = f"{state.plain(place(j))} **{shown:.3g}**" if shown is not None else state.plain(place(j))
    if j.judge != "point" and j.observed is not None:
        what += f" ({JUDGED_ON[j.judge]}; point estimate {j.observed:.3g})"
    notes = [state.plain(j.note)] if j.note else []
    notes.append(interval(j.ci_low, j.ci_high))
    margin = abs(j.judged - j.threshold)
    side = "over the maximum" if j.comparison == "<=" else "under the minimum"
    return f"{what} ({'; '.join(notes)}), {margin:.3g} {side}"


def rule_line(result, *, detailed: bool) -> str:
    """One rule of the gate in words: what it asks, where it failed and by how much (or its own reason)."""
    badge = f":{BADGE.get(result.status, 'gray')}-badge[{STATUS_WORDS.get(result.status, result.status)}]"
    head = f"{badge} **{state.plain(result.rule_id)}**" + (" (blocks release)" if result.blocking else "")
    failing = [j for j in judged if j.rule_id == result.rule_id and j.status == "failed"]
    if not failing or result.status == "insufficient":
        return f"{head}: {state.plain(result.reason)}"
    asks = f"{words(failing[0].metric)} must be {bound(failing[0])}"
    set_aside = [j for j in judged if j.rule_id == result.rule_id and j.status == "set aside"]
    aside = (f"  \nSet aside (too little evidence): {state.plain(', '.join(place(j) for j in set_aside[:6]))}"
             + (f" and {len(set_aside) - 6} more" if len(set_aside) > 6 else "") if set_aside else "")
    if detailed:
        return f"{head}: {asks}; it is not in\n" + "".join(f"\n- {judged_text(j)}" for j in failing) + (
            f"\n\n{aside.strip()}" if aside else "")
    return f"{head}: {asks}; it is not in " + "; ".join(judged_text(j) for j in failing) + aside


def passed_text(result) -> str:
    if (result.metric and result.observed is not None and result.comparison in BOUND_WORDS
            and result.threshold is not None):
        return (f"{state.plain(result.rule_id)} ({words(result.metric)} {result.observed:.3g}, "
                f"{BOUND_WORDS[result.comparison]} {result.threshold:.3g})")
    return state.plain(result.rule_id)


def verdict_summary() -> None:
    """What the latest gate decided, in words, before any tab."""
    if gate is None:
        st.info(f"{state.plain(model)} v{state.plain(version)} has no gate decision yet, so no verdict: an engineer "
                f"runs `govern gate {model} {version}`.", icon=":material/pending:")
        return
    results = gate.decision.results
    blocking = [r for r in results if r.blocking]
    noted = [r for r in results if not r.blocking and r.status != "passed"]
    passed = [r for r in results if r.status == "passed"]
    when = (f"{state.plain(gate.policy_name)} v{state.plain(gate.policy_version)}, decided "
            f"{gate.created_at:%Y-%m-%d %H:%M} UTC by {state.plain(gate.created_by)}")
    if gate.verdict == "blocked":
        st.error(f"**{state.plain(model)} v{state.plain(version)} is blocked from release** by "
                 f"{state.plain(', '.join(r.rule_id for r in blocking))} ({when}).", icon=":material/block:")
    else:
        st.success(f"**{state.plain(model)} v{state.plain(version)} passed its gate** ({when})"
                   + (f", with {len(noted)} rule{'s' if len(noted) != 1 else ''} noted below." if noted else "."),
                   icon=":material/check_circle:")
    for result in blocking:
        st.markdown(rule_line(result, detailed=True))
    for result in noted:
        st.markdown(rule_line(result, detailed=False))
    if passed:
        st.markdown(":green-badge[passed] " + " · ".join(passed_text(r) for r in passed))
    if gate.evaluation_id != evaluation.id:
        st.warning(f"The gate judged evaluation {gate.evaluation_id}; the tabs show the newer evaluation "
                   f"{evaluation.id}, which no gate has judged yet.")
    origin = chain[0].lineage or {}
    if origin.get("job"):
        st.caption(f"Retrained from v{state.plain(chain[0].parent_version or '?')} by job "
                   f"{state.plain(origin['job'])} for {state.plain(', '.join(origin.get('failing_rules', [])))}: "
                   "what its search traded off is under **Gate and lineage**.")


def table(family: str, exclude: tuple[str, ...] = ("reliability_bin",)) -> pd.DataFrame:
    return pd.DataFrame([{"metric": r.metric, "feature": r.feature or "", "group": r.group or "", "value": r.value,
                          f"{level} low": r.ci_low, f"{level} high": r.ci_high, "n": r.n}
                         for r in metrics.records if r.family == family and r.metric not in exclude])


def threshold_caption(rows: list, what: str) -> str:
    """Which rule each dashed line is, and the columns it is drawn on."""
    by_rule: dict[str, list] = {}
    for j in rows:
        by_rule.setdefault(j.rule_id, []).append(j)
    return " ".join(f"Red line: rule {state.plain(rule)}, {words(found[0].metric)} {bound(found[0])}, drawn "
                    f"on {state.plain(', '.join(dict.fromkeys(str(j.feature) for j in found)))}."
                    for rule, found in by_rule.items()) or f"No rule of the latest gate's policy bounds {what}."


@st.cache_data(show_spinner=False, max_entries=256)
def judged_bars(frame: pd.DataFrame, **options) -> dict:
    """charts.judged_bars as a Vega-Lite spec, converted once per frame: Altair validates every chart it converts,
    and four or more of these were most of the page's time at 200 versions (the same frame, the same spec)."""
    spec = charts.judged_bars(frame, **options).to_dict()
    spec.pop("config", None)  # Altair's default theme's fixed view size: Streamlit sizes the chart
    return spec


def gap_section() -> None:
    """Each sensitive column's (and intersection's) gap between groups, the policy's bound drawn on every one."""
    gaps = [r for r in metrics.records if r.family == "fairness" and r.group is None]
    if not gaps:
        return
    ruled = judged_by_place()
    measures = list(dict.fromkeys(r.metric for r in gaps))
    judged_measures = [m for m in measures if any(j.metric == f"fairness.{m}" and j.group is None for j in judged)]
    measure = st.selectbox("Gap between groups", measures, format_func=words, key="version.gap",
                           index=measures.index(judged_measures[0]) if judged_measures else 0)
    rows, drawn = [], []
    for r in gaps:
        if r.metric != measure:
            continue
        j = ruled.get((f"fairness.{measure}", r.feature, None))
        kept = j is not None and j.status != "set aside"
        drawn += [j] if j is not None else []
        rows.append({"column": r.feature, "value": j.observed if kept else r.value,
                     "low": j.ci_low if kept else r.ci_low, "high": j.ci_high if kept else r.ci_high,
                     "standing": standing(j), "threshold": j.threshold if j else None,
                     "policy": f"{j.rule_id}: {bound(j)} on {r.feature}" if j else "",
                     "over": j.note if j and j.note else "every group", "n": r.n})
    frame = pd.DataFrame(rows)
    st.vega_lite_chart(spec=judged_bars(frame, category="column", value="value", low="low", high="high",
                                        standing="standing", threshold="threshold", label="policy",
                                        title=words(measure), tooltip=list(frame.columns), across=False),
                       width="stretch")
    st.caption(threshold_caption(drawn, words(measure)) + " Where the policy sets small groups aside, the gap is "
               "the one it judged, over the groups it kept; the bar is the point estimate, the line its interval.")


def group_section() -> None:
    """Per sensitive column, each group's value of one metric, coloured by the policy's rule for that metric."""
    grouped = [r for r in metrics.records if r.family == "fairness" and r.group is not None and r.metric != "count"]
    options = list(dict.fromkeys(r.metric for r in grouped))
    ruled = judged_by_place()
    # the metric of the first per-group rule (in the policy's order) that found something wrong, else of the first
    per_group = [j for j in judged if j.group is not None and j.metric.removeprefix("fairness.") in options]
    first = next((j for j in per_group if j.status == "failed"), per_group[0] if per_group else None)
    shown = first.metric.removeprefix("fairness.") if first is not None else (options[:1] or [""])[0]
    metric = st.selectbox("Per group", options, format_func=words, key="version.group_metric",
                          index=options.index(shown) if shown in options else 0)
    name = f"fairness.{metric}"
    for feature in dict.fromkeys(r.feature for r in grouped):
        rows, drawn = [], []
        for r in grouped:
            if r.metric != metric or r.feature != feature:
                continue
            j = ruled.get((name, feature, r.group))
            drawn += [j] if j is not None else []
            rows.append({"group": r.group, "value": r.value, "low": r.ci_low, "high": r.ci_high, "n": r.n,
                         "standing": standing(j), "threshold": j.threshold if j else None,
                         "policy": f"{j.rule_id}: {bound(j)} on {feature}" if j else "",
                         "note": j.note if j else ""})
        if not rows:
            continue
        frame = pd.DataFrame(rows)
        failing = [j for j in drawn if j.status == "failed"]
        st.markdown(f"**{state.plain(feature)}**")
        aside = [str(j.group) for j in drawn if j.status == "set aside"]
        st.caption(threshold_caption(drawn, f"{words(metric)} per group")
                   + (f" Fails: {state.plain(', '.join(f'{j.group} ({j.judged:.3g})' for j in failing))}."
                      if failing else "")
                   + (f" Set aside, too few rows: {state.plain(', '.join(aside))}." if aside else ""))
        st.vega_lite_chart(spec=judged_bars(frame, category="group", value="value", low="low", high="high",
                                            standing="standing", threshold="threshold", label="policy",
                                            title=words(metric), tooltip=list(frame.columns), across=True),
                           width="stretch")


def p_value(p: float | None) -> str:
    if p is None:
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def change(d) -> str:
    """'better' / 'worse' by the metric's direction (evaluation.catalogue), '' where no direction is better."""
    spec = METRICS.get(f"{d.family}.{d.metric}")
    if spec is None or spec.better == "neither" or not d.difference:
        return ""
    return "better" if (d.difference > 0) == (spec.better == "higher") else "worse"


def compare_colours(frame: pd.DataFrame) -> pd.DataFrame:
    """Green where the version is significantly better, red where significantly worse (difference and change)."""
    colour = frame["change"].map({"better": "background-color: #c8e6c9", "worse": "background-color: #ffcdd2"})
    colour = colour.where(frame["significant"] == "yes", "").fillna("")
    return pd.DataFrame({column: colour if column in ("difference", "change") else ""
                         for column in frame.columns}, index=frame.index)


def compare_tab() -> None:
    others = [v.version for v in data.versions(home, actor, model) if v.version != version]
    if not others:
        st.info("This model has one version; there is nothing to compare with yet.")
        return
    other = st.selectbox("Compare with version", others, index=len(others) - 1, key="version.compare")
    try:
        comparison = data.compare(home, actor, model, other, version)
    except GovernError as exc:
        st.warning(str(exc))
        return
    differences = comparison.differences
    for note in (comparison.threshold_note(), comparison.rows_note("**Gate and lineage**")):
        if note:
            st.info(note[0].upper() + note[1:])
    only = st.checkbox("Significant differences only", key="version.significant")
    shown = sorted((d for d in differences if d.significant or not only),  # gaps between groups before groups
                   key=lambda d: (FAMILY_ORDER.index(d.family) if d.family in FAMILY_ORDER else len(FAMILY_ORDER),
                                  d.group is not None))
    frame = pd.DataFrame([{"family": d.family, "metric": d.metric, "feature": d.feature or "", "group": d.group or "",
                           f"v{other}": d.a, f"v{version}": d.b, "difference": d.difference, "change": change(d),
                           "p-value": p_value(d.p_value),
                           "significant": {True: "yes", False: "no", None: "no interval"}[d.significant]}
                          for d in shown])
    st.caption(f"Version {version} minus version {other}, fairness first; green: significantly better, red: "
               "significantly worse (by each metric's direction). Two-sided test at 5% on the bootstrap intervals "
               "(conservative when both were scored on the same rows). A gap between groups here is over every "
               "group; the gate judges the groups its rule's min_samples admits (Gate and lineage shows that gap).")
    numbers = {column: "{:.4g}" for column in (f"v{other}", f"v{version}", "difference")}
    styled = frame.style.apply(compare_colours, axis=None).format(numbers, na_rep="") if not frame.empty else frame
    st.dataframe(styled, hide_index=True, width="stretch")


def gate_table() -> None:
    def limit(r) -> str:
        if r.threshold is None or r.comparison is None:
            return ""
        if r.comparison == "max_regression":
            base = f" {r.baseline_value:.4g}" if r.baseline_value is not None else ""
            return f"at most {r.threshold:.3g} below the baseline{base}"
        return f"{BOUND_WORDS.get(r.comparison, r.comparison)} {r.threshold:.4g}"

    frame = pd.DataFrame([{"rule": r.rule_id, "status": r.status, "blocks release": "yes" if r.blocking else "",
                           "observed": r.observed, "judged value": r.judged,
                           "judged on": JUDGED_ON.get(r.bound, "") if r.bound else "", "limit": limit(r),
                           "reason": r.reason} for r in gate.decision.results])
    st.table(frame.style.apply(lambda row: [f"background-color: {ROW_COLOURS.get(row['status'], '')}"] * len(row),
                               axis=1).format({"observed": "{:.4g}", "judged value": "{:.4g}"}, na_rep=""))


def search_section() -> None:
    """The trade-off the retraining search weighed when this version came from a retraining job."""
    job_id = (chain[0].lineage or {}).get("job")
    if not job_id:
        return
    try:
        detail = data.job(home, actor, job_id)
    except GovernError as exc:
        st.warning(str(exc))
        return
    if not detail.searched:
        st.caption(f"Retrained by job {state.plain(job_id)}; its search stored no candidates.")
        return
    flagged = [rule for rule, spec in detail.aim.items() if spec.get("flagged")] or list(detail.aim)
    if not flagged:
        return
    st.subheader("How the retraining search chose this version")
    rule = st.selectbox("Flagged rule", flagged, key="version.search_rule") if len(flagged) > 1 else flagged[0]
    spec = detail.aim[rule]
    rows = charts.search_candidates(detail.candidates, rule)
    y = charts.search_y(rows)
    frame = rows.dropna(subset=[y, rule])
    judged_on = {"point": "", "ci_upper": " (upper bound)", "ci_lower": " (lower bound)"}[spec.get("judge", "point")]
    if not frame.empty:
        st.altair_chart(charts.tradeoff(frame, x=rule, y=y,
                                        bound=spec.get("max") if spec.get("max") is not None else spec.get("min"),
                                        x_title=f"{spec['metric']}{judged_on} ({rule})"), width="stretch")
    chosen = next((c for c in detail.candidates if c["chosen"]), None)
    st.caption(f"Job {state.plain(job_id)} tried {len(detail.candidates)} candidates on held-out rows none trained "
               "on (the validation and calibration splits); ringed: the one chosen"
               + (f" ({state.plain(chosen['strategy'])}, "
                  f"{charts.search_choice(chosen, rows)})"
                  if chosen else "") + ". Dashed: the rule's bound.")


def performance_tab() -> None:
    st.dataframe(table("performance"), hide_index=True, width="stretch")
    probed = [r for r in metrics.records if r.family == "sanity"]
    if probed:
        st.caption("How well each column alone separates the label (ROC AUC, 0.5 = not at all): a column near 1 "
                   "is usually the outcome leaking in.")
        st.dataframe(pd.DataFrame([{"column": r.feature, "ROC AUC alone": r.value, "rows": r.n,
                                    "note": r.detail.get("reason", "")}
                                   for r in sorted(probed, key=lambda r: -(r.value or 0))]),
                     hide_index=True, width="stretch")


def calibration_tab() -> None:
    ece = metrics.find("calibration", "ece")
    if ece is not None and ece.value is not None:
        st.metric("Expected calibration error", f"{ece.value:.4f}", help="15 equal-width bins, as torchmetrics.")
        st.caption(f"ECE {ece.value:.4f} ({interval(ece.ci_low, ece.ci_high)})")
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


def fairness_tab() -> None:
    if not any(r.family == "fairness" and r.group is not None for r in metrics.records):
        st.info("No sensitive features were ingested with these predictions (`--sensitive`).")
    else:
        gap_section()
        group_section()
        with st.expander("Every fairness record"):
            st.dataframe(table("fairness"), hide_index=True, width="stretch")


def drift_tab() -> None:
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


def gate_tab() -> None:
    if gate:
        st.markdown(f"Latest gate: **{gate.verdict}**")
        st.text(f"Policy {gate.policy_name} v{gate.policy_version}, sha256 {gate.policy_sha256}, "
                f"decided {gate.created_at:%Y-%m-%d %H:%M} by {gate.created_by}")
        gate_table()
        with st.expander("Policy text"):
            st.code(data.gate_policy_text(home, actor, gate.id), language="yaml")
    else:
        st.info("Not gated yet.")
    st.text("Lineage: " + " ← ".join(v.version for v in chain))
    search_section()


verdict_summary()
st.caption(f"Evaluation {evaluation.id} · {metrics.params.get('rows')} rows · engine {evaluation.engine}")
# Only the open tab runs (a tab switch reruns the page): the Compare tab's significance tests and table
# styling, or the drift timeline, cost nothing until someone opens them.
TABS = {"Performance": performance_tab, "Calibration": calibration_tab, "Fairness": fairness_tab,
        "Drift": drift_tab, "Compare": compare_tab, "Gate and lineage": gate_tab}
for tab, show in zip(st.tabs(list(TABS), key="version.tab", on_change="rerun"), TABS.values()):
    if tab.open:
        with tab:
            show()
