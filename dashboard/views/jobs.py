"""Retraining jobs: status, progress, attempts, errors and the resulting version."""

import pandas as pd
import streamlit as st

from dashboard import data, state

st.title("Retraining jobs")
found = data.jobs(state.home(), state.user())
if not found:
    st.info("No retraining jobs.")
else:
    st.dataframe(pd.DataFrame([{"id": j.id, "model": j.model, "version": j.version, "status": j.status,
                                "strategies": "+".join(j.strategies), "rules": ", ".join(j.failing_rules),
                                "attempts": j.attempts} for j in found]), hide_index=True, width="stretch")
