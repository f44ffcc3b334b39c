"""Estimated vs realised performance of production batches (issue 19): NannyML's familiar chart — the
estimate with its band over the batches, the realised value as a point where labels arrived, the
monitoring rule's bound — and the cached reads it draws from. Rendering only: the service computes."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from governance.records import EstimatePoint
from governance.service import Service

LABELS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1", "roc_auc": "ROC AUC",
          "true_positive_rate": "true positive rate", "false_positive_rate": "false positive rate",
          "equalized_odds_difference": "equalized odds gap", "equal_opportunity_difference": "equal opportunity gap"}


def _service(home: str, actor: str) -> Service:
    return Service.open(home=home, actor=actor, token=st.session_state.get("govern.token"), require_proof=True)


@st.cache_data(ttl=30, show_spinner=False)
def timeline(home: str, actor: str, model: str, version: str) -> list[EstimatePoint]:
    return _service(home, actor).estimate_timeline(model=model, version=version)


@st.cache_data(ttl=30, show_spinner=False)
def bounds(home: str, actor: str, model: str) -> list[Any]:
    return _service(home, actor).monitoring_bounds(model=model)


def frame(points: list[EstimatePoint], metric: str, feature: str | None, group: str | None) -> pd.DataFrame:
    rows = [{"batch": p.prediction_set_id, "time": p.batch_time or p.ingested_at, "estimated": p.estimate,
             "low": p.ci_low, "high": p.ci_high, "realised": p.realised, "labelled rows": p.labelled_rows,
             "rows": p.rows} for p in points if (p.metric, p.feature, p.group) == (metric, feature, group)]
    return pd.DataFrame(rows)


def chart(data: pd.DataFrame, metric: str, bound_values: list[tuple[str, float]]) -> alt.LayerChart:
    """Band (± 3 sampling errors), estimate line, realised points and the bounds as dashed rules."""
    title = LABELS.get(metric, metric)
    x = alt.X("time:T", title="batch time")
    band = alt.Chart(data).mark_area(opacity=0.25, color="#4c78a8").encode(
        x, y=alt.Y("low:Q", title=title, scale=alt.Scale(zero=False)), y2="high:Q",
        tooltip=["batch", alt.Tooltip("low:Q", format=".4f"), alt.Tooltip("high:Q", format=".4f")])
    estimate = alt.Chart(data).mark_line(point=True, color="#4c78a8").encode(
        x, y="estimated:Q", tooltip=["batch", alt.Tooltip("estimated:Q", format=".4f"), "rows"])
    realised = alt.Chart(data.dropna(subset=["realised"])).mark_point(
        shape="diamond", size=110, filled=True, color="#e45756").encode(
        x, y="realised:Q", tooltip=["batch", alt.Tooltip("realised:Q", format=".4f"), "labelled rows", "rows"])
    layers = [band, estimate, realised]
    if bound_values:
        rules = pd.DataFrame([{"rule": rule, "bound": value} for rule, value in bound_values])
        layers.append(alt.Chart(rules).mark_rule(strokeDash=[6, 4], color="#54a24b").encode(
            y="bound:Q", tooltip=["rule", "bound"]))
    return alt.layer(*layers).properties(height=320, title=f"{title}: estimated (band) and realised (◆)")


def render(home: str, actor: str, model: str, version: str) -> None:
    """The section: pick a metric and a scope (overall or a group), draw the chart, list the batches."""
    points = timeline(home, actor, model, version)
    if not points:
        st.info("No monitored production batch has estimates yet: ingest batches with `--split production` "
                "(labels optional) and run `govern monitor`.")
        return
    metrics = [m for m in LABELS if any(p.metric == m for p in points)]
    metric = st.selectbox("Metric", metrics, format_func=lambda m: LABELS[m], key="monitoring.metric")
    scopes = sorted({(p.feature, p.group) for p in points if p.metric == metric},
                    key=lambda s: (s[0] is not None, s[0] or "", s[1] or ""))
    scope = st.selectbox("Rows", scopes, key="monitoring.scope",
                         format_func=lambda s: "all rows" if s[0] is None else
                         (f"{s[0]}={s[1]}" if s[1] is not None else f"between the groups of {s[0]}"))
    data = frame(points, metric, *scope)
    marks = [(b.rule_id, b.threshold) for b in bounds(home, actor, model)
             if b.metric == metric and (b.feature in (None, "every") or b.feature == scope[0])
             and (b.group in (None, "every", "worst") or b.group == scope[1])]
    st.altair_chart(chart(data, metric, marks), width="stretch")
    st.caption("Estimated without labels by confidence-based performance estimation (CBPE, as NannyML computes "
               "it) from the version's eval set; the band is ± 3 sampling errors. Realised values appear once "
               "`govern labels` joined outcomes (on the labelled rows). Dashed: the monitoring rules' bounds.")
    shown = data.assign(labelled=data["labelled rows"].astype(str) + " / " + data["rows"].astype(str))
    st.dataframe(shown[["batch", "time", "estimated", "low", "high", "realised", "labelled"]], hide_index=True,
                 width="stretch")
