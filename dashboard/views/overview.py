"""Every model: its production version, latest gate verdict, open review items and running jobs."""

import pandas as pd
import streamlit as st

from dashboard import data, state

st.title("Overview")
state.show_flash()
home, actor = state.home(), state.user()
items = data.review_items(home, actor, "open")
running = [j for j in data.jobs(home, actor) if j.status in ("queued", "running", "waiting_review")]
rows = []
for model in data.models(home, actor):
    versions = data.versions(home, actor, model.name)
    latest = versions[-1].version if versions else None
    gate = data.latest_gate(home, actor, model.name, latest) if latest else None
    rows.append({"model": model.name, "risk tier": model.risk_tier, "versions": len(versions),
                 "production": data.production(home, actor, model.name) or "-", "latest version": latest or "-",
                 "latest gate": gate.verdict if gate else "-",
                 "open review items": sum(1 for i in items if i.model == model.name),
                 "active jobs": sum(1 for j in running if j.model == model.name)})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
else:
    st.info("No models yet. Register one with `govern model register` or `govern train`.")
