"""Store set-up and users."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import duckdb

from governance import __version__
from governance.errors import Conflict, InvalidInput, NotAllowed, NotFound
from governance.identity import KINDS, SESSION_LIFETIME
from governance.private import private_dir
from governance.records import Record, StoreStatus, User
from governance.roles import Action, Role, parse_role
from governance.service.audit import AuditActions
from governance.service.auth import AuthActions, Credential
from governance.service.base import _now, _present, check_name
from governance.service.releases import ReleaseActions
from governance.store import auth, migrations, registry, users


@dataclass(frozen=True)
class Bootstrap(Record):
    """The store after `init`, and the first admin's session when this call created that admin."""

    status: StoreStatus
    session: Credential | None


class UserActions(AuthActions, AuditActions, ReleaseActions):

    def init(self, *, admin: str | None = None, password: str | None = None) -> StoreStatus:
        """Create the store (idempotent) and, on a store with no users, its first admin."""
        return self.bootstrap(admin=admin, password=password, login=False).status

    def bootstrap(self, *, admin: str | None = None, password: str | None = None, login: bool = True) -> Bootstrap:
        """`init`, and with `login` a session for the admin it created (none when the admin existed)."""
        from governance.keys import load_or_create_key
        if admin is not None:
            check_name("user", admin)
        password_hash = _hash(password)
        private_dir(self.settings.home)
        private_dir(self.settings.artifacts_dir)
        load_or_create_key(self.settings.key_path)

        def unit(conn: duckdb.DuckDBPyConnection) -> Credential | None:
            applied = migrations.apply_pending(conn, enforces_keys=self.backend.enforces_keys)
            if applied:
                self._log(conn, "store.init" if "m001_users_registry_artifacts" in applied else "store.migrate",
                          "store", {"applied": applied, "govern_version": __version__})
            if admin is None:
                return None
            existing = users.get_user(conn, admin)
            if existing is not None:
                if existing.role is not Role.ADMIN:
                    raise Conflict(f"user {admin!r} already exists as {existing.role.value}, not admin.")
                return None
            if users.count_users(conn):
                raise NotAllowed(
                    "the store already has users, so `init --admin` cannot add one; "
                    "an admin adds users with `govern user add NAME --role admin`."
                )
            users.insert_user(conn, name=admin, role=Role.ADMIN, password_hash=password_hash,
                              created_at=_now(), created_by=None)
            self._log(conn, "user.add", f"user:{admin}", {"name": admin, "role": "admin", "bootstrap": True},
                      actor=admin, auth_method="bootstrap")
            if not login:
                return None
            admin_user = _present(users.get_user(conn, admin), f"user {admin}")
            return self._issue(conn, admin_user, kind="session", name="init", lifetime=SESSION_LIFETIME,
                               created_by=admin, client="init")

        session = self._run(unit, create=True)
        self._mark_migrated()
        return Bootstrap(self._status_unchecked(), session)

    def status(self) -> StoreStatus:
        """The store's state and what is wrong with it: a live chain that no longer matches the witnessed
        heads, production aliases resting on expired overrides (each raises an item for admins)."""
        self._run(lambda conn: self._authorize(conn, Action.VIEW))
        current = self._status_unchecked()
        seen = self.witness_status()
        expired = self.expired_overrides(file_items=True)
        problems = list(seen.problems) + [
            f"{m.model}: production version {m.version} rests on an override that expired "
            f"{m.override_expires:%Y-%m-%d %H:%M} UTC ({m.override_reason})" for m in expired]
        # expired_overrides keeps only moves whose override_expires is set and past.
        return replace(current, witness=seen.to_dict(),
                       expired_overrides=[{"model": m.model, "version": m.version, "reason": m.override_reason,
                                           "expired_at": cast(datetime, m.override_expires).isoformat(),
                                           "by": m.actor} for m in expired], problems=problems)

    def _status_unchecked(self) -> StoreStatus:
        from governance.store import audit_log

        def unit(conn: duckdb.DuckDBPyConnection) -> StoreStatus:
            head = audit_log.head(conn)
            counts = registry.counts(conn)
            return StoreStatus(
                home=str(self.settings.home), database=self.backend.identity,
                migrations=migrations.applied_migrations(conn), users=users.count_users(conn),
                models=counts["models"], versions=counts["versions"], prediction_sets=counts["prediction_sets"],
                audit_events=audit_log.event_count(conn), audit_head=head[1] if head else None,
            )

        return self._run(unit)

    def add_user(self, *, name: str, role: str | Role, password: str | None = None) -> User:
        check_name("user", name)
        parsed = parse_role(role) if isinstance(role, str) else role
        password_hash = _hash(password)

        def unit(conn: duckdb.DuckDBPyConnection) -> User:
            self._authorize(conn, Action.MANAGE_USERS)
            if users.get_user(conn, name) is not None:
                raise Conflict(f"user {name!r} already exists.")
            alike = users.users_named_alike(conn, name)
            if alike:  # one mailbox, two reviewers: the identity provider matches names ignoring case
                raise Conflict(f"user {alike[0].name!r} already exists; names must differ by more than case (one "
                               "person signing in as Ravi@ and ravi@ would be two reviewers).")
            users.insert_user(conn, name=name, role=parsed, password_hash=password_hash,
                              created_at=_now(), created_by=self.actor)
            self._log(conn, "user.add", f"user:{name}",
                      {"name": name, "role": parsed.value, "password_set": password is not None})
            return _present(users.get_user(conn, name), f"user {name}")

        return self._run(unit)

    def list_users(self) -> list[User]:
        return self._read(Action.MANAGE_USERS, lambda conn: users.list_users(conn))

    def set_user_enabled(self, *, name: str, enabled: bool) -> User:
        """Disable (or enable again) a user (admins): a disabled user's sessions and tokens stop working.
        The last enabled admin cannot be disabled."""
        def unit(conn: duckdb.DuckDBPyConnection) -> User:
            self._authorize(conn, Action.MANAGE_USERS)
            found = users.get_user(conn, name)
            if found is None:
                raise NotFound(f"user {name!r} does not exist.")
            if found.enabled == enabled:
                return found
            if not enabled and found.role is Role.ADMIN and users.count_enabled_admins(conn) <= 1:
                raise Conflict(f"{name!r} is the last enabled admin; add or enable another admin first.")
            users.set_disabled(conn, name, None if enabled else _now())
            # Enabling again must not revive what was issued before: a disabled user's credentials die with it.
            revoked = [] if enabled else auth.revoke_all(conn, name, KINDS, _now())
            self._log(conn, "user.enable" if enabled else "user.disable", f"user:{name}",
                      {"name": name, "revoked": revoked})
            return _present(users.get_user(conn, name), f"user {name}")

        return self._run(unit)

    def set_password(self, *, name: str, password: str | None) -> User:
        """Set or clear (None) a user's password: their own, or anyone's for admins."""
        password_hash = _hash(password)

        def unit(conn: duckdb.DuckDBPyConnection) -> User:
            me = self._authorize(conn, Action.VIEW)
            if me.name != name:
                self._authorize(conn, Action.MANAGE_USERS)
            if users.get_user(conn, name) is None:
                raise NotFound(f"user {name!r} does not exist.")
            users.set_password_hash(conn, name, password_hash)
            # Sessions opened with the old password end (the caller's own stays); API tokens are separate.
            keep = self._auth.get("token") if self._auth else None
            revoked = auth.revoke_all(conn, name, ("session", "dashboard", "oidc"), _now(), keep=keep)
            self._log(conn, "user.passwd", f"user:{name}", {"name": name, "password_set": password is not None,
                                                            "sessions_revoked": revoked})
            return _present(users.get_user(conn, name), f"user {name}")

        return self._run(unit)


def _hash(password: str | None) -> str | None:
    from argon2 import PasswordHasher
    if password is None:
        return None
    if len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters.")
    if len(password) > 1024:
        raise InvalidInput("a password may have at most 1024 characters.")
    return PasswordHasher().hash(password)
