"""Sign-off and release: approvals so far, approve or reject, release, rollback, admin override."""

import pandas as pd
import streamlit as st

from dashboard import data, state
from governance.errors import GovernError
from governance.roles import Action

st.title("Sign-off and release")
state.show_flash()
home, actor = state.home(), state.user()
model, version = data.pick_version("release")
st.write(f"Production: **{data.production(home, actor, model) or '-'}**")
signoffs = data.signoffs(home, actor, model, version)
if signoffs:
    st.dataframe(pd.DataFrame([s.to_dict() for s in signoffs]), hide_index=True)
else:
    st.caption("No sign-offs yet.")
service = state.service()


def act(call, message: str) -> None:
    try:
        call()
    except GovernError as exc:
        st.error(state.plain(str(exc)))
        return
    state.changed()
    state.flash(message)
    st.rerun()


if state.may(Action.SIGN_OFF):
    gate = data.latest_gate(home, actor, model, version)
    blocked = [r.rule_id for r in gate.decision.results if r.blocking and r.kind != "approvals"] \
        if gate else []
    acknowledged = False
    if gate is None:
        st.info("No gate decision yet: an approval binds to the evidence a binding gate judged.")
    elif blocked:
        st.warning(f"The latest gate of {model} {version} is blocked by {', '.join(blocked)}. An approval now is "
                   "recorded as given despite the blocked gate.")
        acknowledged = st.checkbox("I have read why the gate is blocked and approve anyway", key="release.ack")
    if gate is not None and gate.decision.cautions:
        st.info("An approval also accepts what the gate flags without blocking:\n"
                + "\n".join(f"- **{state.plain(r.rule_id)}** ({r.status}): {state.plain(r.reason)}"
                             for r in gate.decision.cautions))
    comment = st.text_input("Comment", key="release.comment")
    left, right = st.columns(2)
    if left.button("Approve", key="release.approve"):
        act(lambda: service.sign_off(model=model, version=version, decision="approve", comment=comment,
                                     acknowledge_blocked=acknowledged),
            f"Approved {model} {version}.")
    if right.button("Reject", key="release.reject"):
        act(lambda: service.sign_off(model=model, version=version, decision="reject", comment=comment),
            f"Rejected {model} {version}.")
if state.may(Action.RELEASE) and st.button("Release", key="release.release"):
    act(lambda: service.release(model=model, version=version), f"Released {model} {version}.")
if state.may(Action.ROLLBACK) and st.button("Roll back", key="release.rollback"):
    act(lambda: service.rollback(model=model), f"Rolled {model} back.")
if state.may(Action.OVERRIDE):
    with st.expander("Override the gate"):
        reason = st.text_input("Reason", key="release.reason")
        expires = st.text_input("Expires (ISO 8601)", key="release.expires")
        if st.button("Release with override", key="release.override"):
            act(lambda: service.release(model=model, version=version, override=True, reason=reason,
                                        expires=expires or None), f"Released {model} {version} by override.")
moves = data.history(home, actor, model)
if moves:
    st.subheader("History")
    st.dataframe(pd.DataFrame([m.to_dict() for m in moves]), hide_index=True, width="stretch")
