"""Session state (every key initialised here, namespaced `govern.`) and the per-call service."""

from __future__ import annotations

import importlib
import os
import re
import threading

import streamlit as st

from governance.roles import Action, allowed
from governance.service import Service

KEYS = {"govern.user": None, "govern.role": None, "govern.token": None, "govern.flash": None,
        "govern.audit_zip": None, "govern.audit_verified": None, "govern.dossier_zip": None,
        "govern.dossier_name": None, "govern.dossier_md": None}


# Imported late by the pages, and slow the first time in a server process: pandas' Styler (the coloured
# tables) imports matplotlib, about a second.
LATE_IMPORTS = ("pandas.io.formats.style",)
_warming: list[threading.Thread] = []


def warm_imports() -> None:
    """Import LATE_IMPORTS once per server process on a background thread, from the first visit on (the
    sign-in form), so that no page waits for them."""
    if not _warming:
        _warming.append(threading.Thread(target=lambda: [importlib.import_module(m) for m in LATE_IMPORTS],
                                         name="govern-warm-imports", daemon=True))
        _warming[0].start()


def init() -> None:
    warm_imports()
    for key, default in KEYS.items():
        st.session_state.setdefault(key, default)


def home() -> str:
    return os.environ.get("GOVERN_HOME", "govern-data")


def user() -> str | None:
    return st.session_state.get("govern.user")


def role() -> str | None:
    return st.session_state.get("govern.role")


def may(action: Action) -> bool:
    """Whether the signed-in user's role may take `action`: what a page asks before offering a control
    (the service checks again when the action is taken)."""
    return allowed(role(), action)


def service() -> Service:
    """A service for the signed-in user, proven by their dashboard session (revoked, expired or disabled, it
    stops working at once); it opens the store per call and holds no connection."""
    return Service.open(home=home(), actor=user(), token=st.session_state.get("govern.token"), require_proof=True)


def anonymous() -> Service:
    """For signing in: no user yet."""
    return Service.open(home=home())


def client() -> str:
    """Who is knocking, for the sign-in back-off: the browser's address as Streamlit sees it."""
    try:
        address = st.context.ip_address
    except Exception:  # bare mode (tests)
        address = None
    return f"web:{address or 'unknown'}"


def signed_in(credential) -> None:
    st.session_state["govern.user"] = credential.user
    st.session_state["govern.role"] = credential.role
    st.session_state["govern.token"] = credential.secret


_MARKDOWN = re.compile(r"([\\`*_\[\]()<>!~$|])")  # what makes links, images, HTML, code or emphasis


def plain(text: str) -> str:
    """`text` escaped so that Streamlit's markdown shows it as typed: a link or image in someone's comment,
    reason or policy stays text and makes no browser fetch anything (a bare URL may still be linked)."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def flash(message: str) -> None:
    """A message shown once on the next run (after an action and its rerun)."""
    st.session_state["govern.flash"] = message


def show_flash() -> None:
    message = st.session_state.get("govern.flash")
    if message:
        st.success(message)
        st.session_state["govern.flash"] = None


def changed() -> None:
    """After a write: cached reads are stale."""
    st.cache_data.clear()
