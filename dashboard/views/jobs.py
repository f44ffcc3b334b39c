"""Retraining jobs: status, progress, attempts, errors and the resulting version."""

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError

st.title("Retraining jobs")
found = data.jobs(state.home(), state.user())
if not found:
    st.info("No retraining jobs.")
else:
    st.dataframe(pd.DataFrame([{"id": j.id, "model": j.model, "version": j.version, "status": j.status,
                                "strategies": "+".join(j.strategies), "rules": ", ".join(j.failing_rules),
                                "attempts": j.attempts} for j in found]), hide_index=True, width="stretch")
    active = [j.id for j in found if j.status in ("waiting_review", "queued", "running")]
    if active and state.role() in ("engineer", "admin"):
        job_id = st.selectbox("Job", active, key="jobs.job")
        if st.button("Cancel job", key="jobs.cancel"):
            try:
                state.service().cancel_job(job_id=job_id)
            except GovernError as exc:
                st.error(str(exc))
            else:
                state.changed()
                st.rerun()
