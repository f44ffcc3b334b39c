"""Production monitoring: per model version, performance estimated without labels beside the realised
values where outcomes arrived, per metric and group (dashboard.estimates draws it)."""

import streamlit as st

from dashboard import data, estimates, state

st.title("Production monitoring")
st.caption("Estimated vs realised performance of the production batches: label-free batches are estimated "
           "(CBPE); late labels (`govern labels`) add the realised values.")
home, actor = state.home(), state.user()
names = [m.name for m in data.models(home, actor)]
if not names:
    st.info("No models yet.")
    st.stop()
model = st.selectbox("Model", names, key="monitoring.model")
found = [v.version for v in data.versions(home, actor, model)]
if not found:
    st.info("This model has no versions yet.")
    st.stop()
version = st.selectbox("Version", found, index=len(found) - 1, key="monitoring.version")
estimates.render(home, actor, model, version)
