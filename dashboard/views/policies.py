"""Policy packs: the shipped ones, validation of your own, and a dry run against a version."""

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from policies import PolicyInvalid, parse_policy, shipped_packs

st.title("Policies")
packs = shipped_packs()
choice = st.selectbox("Pack", [*packs, "paste your own"], key="policies.pack")
if choice == "paste your own":
    text = st.text_area("Policy YAML", height=240, key="policies.text")
else:
    text = packs[choice].read_text()
    st.code(text, language="yaml")
if not text.strip():
    st.stop()
try:
    loaded = parse_policy(text, source=f"{choice}.yaml" if choice in packs else "policy")
except PolicyInvalid as exc:
    st.error("This policy is not valid:")
    st.code(str(exc), language="text")  # as text: a pasted policy's content must not render as markdown
    st.stop()
st.success(f"Valid: {loaded.policy.name} v{loaded.policy.version}, {len(loaded.policy.rules)} rules, "
           f"sha256 {loaded.sha256[:16]}…")
home, actor = state.home(), state.user()
if state.role() in ("engineer", "admin"):
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
