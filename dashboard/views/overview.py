"""Every model: its production version, latest gate verdict, open review items and running jobs; the
headline metrics across versions with their confidence bands."""

import pandas as pd
import streamlit as st

from dashboard import charts, data, state
from governance.records import JobStatus

st.title("Overview")
state.show_flash()
home, actor = state.home(), state.user()
items = data.review_items(home, actor, "open")
running = [j for j in data.jobs(home, actor)
           if j.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_REVIEW)]
models = data.models(home, actor)
releases = data.current_releases(home, actor)
seen = data.witness(home, actor)
if not seen.ok:
    st.error("The decision log no longer matches the heads witnessed before: " + " ".join(seen.problems)
             + " An auditor should compare it with the latest export (`govern audit verify NEW --since OLD`).",
             icon="🚨")
expired = [m for m in releases.values() if m.action == "override" and m.expired]
for move in expired:
    st.error(f"{move.model}: production version {move.version} rests on an admin override that EXPIRED "
             f"{move.override_expires:%Y-%m-%d %H:%M} UTC (reason: {state.plain(move.override_reason)}). "
             "Release a version through the gate and sign-off, roll back, or override again.", icon="⏰")
rows = []


def _production(move) -> str:
    if move is None:
        return "-"
    if move.action != "override":
        return move.version
    state_word = "OVERRIDE EXPIRED" if move.expired else "OVERRIDE until"
    return f"{move.version} ({state_word} {move.override_expires:%Y-%m-%d %H:%M})"


for model in models:
    versions = data.versions(home, actor, model.name)
    latest = versions[-1].version if versions else None
    gate = data.latest_gate(home, actor, model.name, latest) if latest else None
    rows.append({"model": model.name, "risk tier": model.risk_tier, "versions": len(versions),
                 "production": _production(releases.get(model.name)), "latest version": latest or "-",
                 "latest gate": gate.verdict if gate else "-",
                 "open review items": sum(1 for i in items if i.model == model.name),
                 "active jobs": sum(1 for j in running if j.model == model.name)})
if not rows:
    st.info("No models yet. Register one with `govern model register` or `govern train`.")
    st.stop()
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.subheader("Headline metrics across versions")
left, right = st.columns(2)
names = [m.name for m in models]
model = left.selectbox("Model", names, index=data.busiest(home, actor, names), key="overview.model")
points = data.trend(home, actor, model)
if not points:
    st.info("No version of this model has been evaluated yet (`govern evaluate`).")
    st.stop()
metric = right.selectbox("Metric", list(dict.fromkeys(p.metric for p in points)), key="overview.metric")
frame = pd.DataFrame([{"version": p.version, "value": p.value, "low": p.ci_low, "high": p.ci_high, "n": p.n,
                       "series": p.feature or "overall"} for p in points if p.metric == metric])
order = list(dict.fromkeys(p.version for p in points))  # oldest version first
st.altair_chart(charts.band_line(frame, x="version", y="value", low="low", high="high", color="series", sort=order),
                width="stretch")
st.caption("Each version's latest evaluation; the band is the bootstrap confidence interval. "
           "Parity differences have one line per sensitive feature.")
