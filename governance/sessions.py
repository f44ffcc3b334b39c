"""The CLI's saved sessions: one credential per user per store, in the user's config folder (0600).

`govern login USER` saves the session it opens; later commands on that store act as USER (or as the
user named by --as / GOVERN_USER, whose session must be saved here). GOVERN_TOKEN, when set, is used
instead and nothing is read from here.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from governance.private import private_dir


def config_dir() -> Path:
    base = os.environ.get("GOVERN_CONFIG_DIR")
    if base:
        return Path(base).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "govern"


def _path() -> Path:
    return config_dir() / "sessions.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    folder = private_dir(config_dir())
    fd, scratch = tempfile.mkstemp(prefix=".sessions-", dir=folder)  # created 0600
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.replace(scratch, _path())


def save(store_id: str, user: str, secret: str, expires_at: datetime) -> None:
    data = _read()
    entry = data.setdefault(store_id, {"users": {}})
    entry["users"][user] = {"token": secret, "expires_at": expires_at.isoformat()}
    entry["current"] = user
    _write(data)


def find(store_id: str, user: str | None) -> tuple[str | None, str | None]:
    """(saved credential, acting user): `user`'s session, or with no user the last one logged in."""
    entry = _read().get(store_id) or {}
    users = entry.get("users") or {}
    name = user or entry.get("current")
    found = users.get(name) if isinstance(users, dict) and name else None
    token = found.get("token") if isinstance(found, dict) else None
    return (token if isinstance(token, str) else None), name


def forget(store_id: str, user: str) -> None:
    data = _read()
    entry = data.get(store_id)
    if not entry or user not in entry.get("users", {}):
        return
    del entry["users"][user]
    if entry.get("current") == user:  # nobody acts by default now: the next saved user had been the first by name,
        entry["current"] = None       # an admin's session taking a viewer's next command
    _write(data)


def saved_users(store_id: str) -> list[str]:
    """The users with a saved session on this store, by name."""
    users = (_read().get(store_id) or {}).get("users") or {}
    return sorted(users) if isinstance(users, dict) else []
