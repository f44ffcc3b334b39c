"""Policy packs: the shipped ones, validation of your own, and a dry run against a version."""

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from governance.roles import Action
from policies import PolicyInvalid, parse_policy, resolve, shipped_packs

st.title("Policies")
PASTED = "paste your own"
choice = st.selectbox("Pack", [*shipped_packs(), PASTED], key="policies.pack")
try:
    if choice == PASTED:
        text = st.text_area("Policy YAML", height=240, key="policies.text")
        if not text.strip():
            st.stop()
        loaded = parse_policy(text)
    else:
        loaded = resolve(choice)
        st.code(loaded.text, language="yaml")
except PolicyInvalid as exc:
    st.error("This policy is not valid:")
    st.code(str(exc), language="text")  # as text: a pasted policy's content must not render as markdown
    st.stop()
st.success(f"Valid: {loaded.policy.name} v{loaded.policy.version}, {len(loaded.policy.rules)} rules, "
           f"sha256 {loaded.sha256[:16]}…")
home, actor = state.home(), state.user()
if state.may(Action.GATE):
    st.subheader("Dry run")
    model, version = data.pick_version("policies")
    if st.button("Dry run the gate", key="policies.dry_run"):
        try:
            outcome = state.service().gate(model=model, version=version, policy=loaded, dry_run=True)
        except GovernError as exc:
            st.error(state.plain(str(exc)))
        else:
            st.write(f"Verdict: **{outcome.decision.verdict}** (nothing stored)")
            st.dataframe(pd.DataFrame([{"rule": r.rule_id, "status": r.status, "reason": r.reason}
                                       for r in outcome.decision.results]), hide_index=True, width="stretch")
