"""The dashboard under Streamlit's AppTest as a signed-in user (the store is GOVERN_HOME's, as the server's)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.support.credentials import credential_for
from tests.support.paths import APP


def signed_in(home: Path, user: str, role: str) -> AppTest:
    """The app as `user` (whose role is `role`) sees it after signing in: an API token of theirs as the session."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["govern.user"], at.session_state["govern.role"] = user, role
    at.session_state["govern.token"] = credential_for(home, user)
    return at
