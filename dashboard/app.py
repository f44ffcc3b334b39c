"""govern's dashboard: `streamlit run dashboard/app.py` (GOVERN_HOME selects the store).

One entry point with st.navigation: sign-in first, then the pages the user's role may use. Pages only
render; every action is one call of the service API, which checks the role again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import streamlit as st

from dashboard import state
from governance.errors import GovernError, StoreBusy
from governance.roles import Action, Role, allowed

VIEWS = Path(__file__).resolve().parent / "views"
BUSY_RETRY_S = 3


class Page(NamedTuple):
    file: str
    title: str
    icon: str  # a Material icon, in the navigation and the browser tab
    roles: frozenset[Role]  # who sees it in the navigation; the service refuses the actions anyway


def page(file: str, title: str, icon: str, *actions: Action) -> Page:
    """A page seen by the roles allowed any of the actions it offers (governance.roles decides)."""
    return Page(file, title, f":material/{icon}:",
                frozenset(role for role in Role if any(allowed(role, action) for action in actions)))


PAGES = [
    page("overview.py", "Overview", "dashboard", Action.VIEW),
    page("version.py", "Model version", "insights", Action.VIEW),
    page("monitoring.py", "Production monitoring", "monitoring", Action.VIEW),
    page("review.py", "Review queue", "rate_review", Action.JUDGE, Action.RESOLVE_ESCALATION),  # engineers: escalations
    page("release.py", "Sign-off and release", "rocket_launch", Action.SIGN_OFF, Action.RELEASE, Action.ROLLBACK,
         Action.OVERRIDE),
    page("jobs.py", "Retraining jobs", "model_training", Action.VIEW),
    page("policies.py", "Policies", "policy", Action.VIEW),
    page("audit.py", "Audit log", "verified_user", Action.AUDIT),
    page("users.py", "Users", "group", Action.MANAGE_USERS),
]


def pages_for(role: str | None) -> list[str]:
    return [p.title for p in PAGES if role in p.roles]


def oidc_configured() -> bool:
    """st.login is offered when the app's secrets hold an [auth] section (Streamlit's OIDC settings)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def sign_in() -> None:
    st.title("govern")
    st.caption("Model governance: metrics per version, release gates, review, retraining, audit.")
    if oidc_configured():
        if st.user.is_logged_in:
            try:
                verified = st.user.get("email_verified")
                found = state.anonymous().sign_in_external(
                    email=str(st.user.get("email") or ""),
                    email_verified=verified if isinstance(verified, bool) else None)
            except GovernError as exc:
                st.error(state.plain(str(exc)))
            else:
                state.signed_in(found)
                st.rerun()
        st.button("Sign in with your identity provider", on_click=st.login)
        st.divider()
    with st.form("sign-in"):
        name = st.text_input("User")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            found = state.anonymous().sign_in(name=name, password=password, client=state.client(), kind="dashboard")
        except GovernError as exc:
            st.error(state.plain(str(exc)))
        else:
            state.signed_in(found)
            st.rerun()


def main() -> None:
    st.set_page_config(page_title="govern", page_icon=":material/verified:", layout="wide")
    state.init()
    if state.user() is not None:
        try:  # a revoked or expired session, or a disabled user, is signed out here with the reason
            state.service().whoami()
        except GovernError as exc:
            for key in state.KEYS:
                st.session_state[key] = None
            st.session_state["govern.flash"] = None
            st.warning(f"You were signed out: {exc}")
    if state.user() is None:
        # Every page's address shows the sign-in form (a shared link such as /version?model=m&version=1
        # opens that page once signed in, instead of "page not found").
        deep = [st.Page(sign_in, title="Sign in", url_path=Path(p.file).stem) for p in PAGES]
        st.navigation([st.Page(sign_in, title="Sign in", url_path="sign-in", default=True), *deep],
                      position="hidden").run()
        return
    with st.sidebar:
        st.write(f"Signed in as **{state.user()}** ({state.role()})")
        if st.button("Sign out"):
            try:
                state.service().logout()
            except GovernError:
                pass  # an expired or revoked session: signing out needs nothing more
            for key in state.KEYS:
                st.session_state[key] = None
            st.rerun()
    visible = [st.Page(str(VIEWS / p.file), title=p.title, icon=p.icon) for p in PAGES if state.role() in p.roles]
    try:
        st.navigation(visible).run()
    except StoreBusy as exc:  # another process held the store past the lock timeout: say so and try again
        st.warning(f"The store is busy, retrying in {BUSY_RETRY_S} s… ({exc})")
        time.sleep(BUSY_RETRY_S)
        st.rerun()
    except GovernError as exc:  # a foreseeable failure a page did not handle: its sentence, not a traceback
        st.error(state.plain(str(exc)))


main()
