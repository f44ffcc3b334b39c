"""Units of work, authorisation and audit logging shared by every service action."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

import duckdb

from governance import __version__
from governance.artifacts import ArtifactStore
from governance.config import Settings, resolve_settings
from governance.errors import InvalidInput, NotAllowed, NotFound
from governance.records import Model, User, Version
from governance.roles import Action, authorize, needed_roles_text
from governance.store import audit_log, migrations, registry, users

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_migrated: set[Path] = set()


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def check_name(kind: str, value: str) -> str:
    if not _NAME.match(value or ""):
        raise InvalidInput(
            f"{kind} {value!r} is not a valid name: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return value


class ServiceBase:
    """One installation seen by one acting user (`actor`, None only for store-level commands)."""

    def __init__(self, settings: Settings, actor: str | None = None) -> None:
        self.settings = settings
        self.actor = actor
        self.database = settings.database()
        self.artifacts = ArtifactStore(settings.artifacts_dir)

    @classmethod
    def open(cls, *, home: str | Path | None = None, actor: str | None = None,
             lock_timeout_s: float | None = None) -> "ServiceBase":
        return cls(resolve_settings(home=home, lock_timeout_s=lock_timeout_s), actor)

    # -- units of work -------------------------------------------------------------------------------------

    def _run(self, unit: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run a unit of work, applying pending migrations first (once per process and store)."""
        path = self.database.path
        if path not in _migrated:
            self.database.run(self._migrate)
            _migrated.add(path)
        return self.database.run(unit)

    def _mark_migrated(self) -> None:
        _migrated.add(self.database.path)

    def _migrate(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        applied = migrations.apply_pending(conn)
        if applied:
            audit_log.append_event(conn, actor=self.actor, action="store.migrate", entity="store",
                                   payload={"applied": applied, "govern_version": __version__})
        return applied

    def _authorize(self, conn: duckdb.DuckDBPyConnection, action: Action) -> User:
        if not self.actor:
            raise NotAllowed(
                f"no acting user: pass --as USER or set GOVERN_USER (to {action.value} "
                f"you need the role {needed_roles_text(action)})."
            )
        user = users.get_user(conn, self.actor)
        if user is None:
            raise NotAllowed(
                f"unknown user {self.actor!r}: an admin adds users with `govern user add` "
                f"(to {action.value} you need the role {needed_roles_text(action)})."
            )
        authorize(user=user.name, role=user.role, action=action)
        return user

    def _log(self, conn: duckdb.DuckDBPyConnection, action: str, entity: str, payload: dict[str, Any]) -> None:
        audit_log.append_event(conn, actor=self.actor, action=action, entity=entity, payload=payload)


def _require_model(conn: duckdb.DuckDBPyConnection, model: str) -> Model:
    record = registry.get_model(conn, model)
    if record is None:
        raise NotFound(f"model {model!r} is not registered; register it with `govern model register {model}`.")
    return record



def _require_version(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Version:
    _require_model(conn, model)
    record = registry.get_version(conn, model, version)
    if record is None:
        raise NotFound(f"version {version!r} of model {model!r} is not registered.")
    return record


def parse_time(value: str | datetime | None, *, what: str = "time") -> datetime | None:
    if value is None or isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"{what} {value!r} is not an ISO 8601 time such as 2024-05-01T00:00:00Z.") from exc
    if parsed is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
    return parsed
