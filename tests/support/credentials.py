"""Test users' CLI credentials: API tokens an admin creates through the public API, as for CI.

One module instance holds them: conftest's make_store fills TOKENS, run_cli and the tests read it."""

from __future__ import annotations

from pathlib import Path

TOKENS: dict[tuple[str, str], str | None] = {}


def credential_for(home: Path, user: str) -> str | None:
    """An API token for `user`, created once per store and user by one of the store's admins; None when
    there is no such store, user or admin."""
    key = (str(home), user)
    if TOKENS.get(key) is None:
        TOKENS[key] = _new_token(home, user)
    return TOKENS[key]


def _new_token(home: Path, user: str) -> str | None:
    from governance.config import resolve_settings
    from governance.service import Service

    try:
        admins = resolve_settings(home=home).database().run(lambda conn: [row[0] for row in conn.execute(
            "SELECT name FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY name").fetchall()])
        return Service.open(home=home, actor=admins[0]).create_token(user=user, name="tests").secret
    except Exception:
        return None
