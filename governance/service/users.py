"""Store set-up and users."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import duckdb

from governance import __version__
from governance.errors import Conflict, InvalidInput, NotAllowed, NotFound
from governance.identity import KINDS, SESSION_LIFETIME
from governance.private import private_dir
from governance.records import Record, StoreStatus, User
from governance.roles import Action, Role, allowed, parse_role
from governance.service.audit import AuditActions
from governance.service.auth import (
    FAILURE_WINDOW,
    AuthActions,
    Credential,
    backoff_seconds,
    check_password_text,
    password_matches,
)
from governance.service.base import _now, _present, check_name
from governance.service.releases import ReleaseActions
from governance.store import audit_log, auth, migrations, registry, users
from governance.store.users import password_digest


@dataclass(frozen=True)
class Bootstrap(Record):
    """The store after `init`, and the first admin's session when this call created that admin."""

    status: StoreStatus
    session: Credential | None
    created_admin: bool = False  # False where the admin named existed already (init on a store set up before)


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

        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[Credential | None, bool]:
            applied = migrations.apply_pending(conn, enforces_keys=self.backend.enforces_keys)
            if applied:
                self._log(conn, "store.init" if "m001_users_registry_artifacts" in applied else "store.migrate",
                          "store", {"applied": applied, "govern_version": __version__})
            if admin is None:
                return None, False
            existing = users.get_user(conn, admin)
            if existing is not None:
                if existing.role is not Role.ADMIN:
                    raise Conflict(f"user {admin!r} already exists as {existing.role.value}, not admin.")
                return None, False
            if users.count_users(conn):
                raise NotAllowed(
                    "the store already has users, so `init --admin` cannot add one; "
                    "an admin adds users with `govern user add NAME --role admin`."
                )
            users.insert_user(conn, name=admin, role=Role.ADMIN, password_hash=password_hash,
                              created_at=_now(), created_by=None)
            self._log(conn, "user.add", f"user:{admin}", {"name": admin, "role": "admin", "bootstrap": True,
                                                          "password_sha256": password_digest(password_hash)},
                      actor=admin, auth_method="bootstrap")
            if not login:
                return None, True
            admin_user = _present(users.get_user(conn, admin), f"user {admin}")
            return self._issue(conn, admin_user, kind="session", name="init", lifetime=SESSION_LIFETIME,
                               created_by=admin, client="init"), True

        session, created = self._run(unit, create=True)
        self._mark_migrated()
        return Bootstrap(self._status_unchecked(), session, created)

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
                      {"name": name, "role": parsed.value, "password_set": password is not None,
                       "password_sha256": password_digest(password_hash)})
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

    def set_password(self, *, name: str, password: str | None, current: str | None = None) -> User:
        """Set or clear (None) a user's password: anyone's for admins; your own with your `current` password.

        A session or token alone does not change its owner's password: whoever held one for a moment could
        lock the owner out, or keep a way in after it was revoked. A user without a password gets a first
        one from an admin (an admin may give themselves theirs). A wrong current password counts as a failed
        sign-in: it is throttled and logged as one, so a stolen session cannot guess the password through it.
        """
        check_password_text(current, "the current password")
        password_hash = _hash(password)
        now = _now()

        def check(conn: duckdb.DuckDBPyConnection) -> tuple[str | None, float]:
            """The stored hash `current` must match (None: nothing to match), the seconds to wait first."""
            me = self._authorize(conn, Action.VIEW)
            if users.get_user(conn, name) is None:
                self._authorize(conn, Action.MANAGE_USERS)  # whether someone else exists is for admins to learn
                raise NotFound(f"user {name!r} does not exist.")
            if me.name != name:
                self._authorize(conn, Action.MANAGE_USERS)
                return None, 0.0
            stored = users.password_hash(conn, name)
            if stored is None:
                if not allowed(me.role, Action.MANAGE_USERS):
                    raise NotAllowed(f"{name} has no password yet: an admin sets the first one (`govern user passwd "
                                     f"{name}`); a session or token alone cannot.")
                return None, 0.0
            if current is None:
                raise NotAllowed("changing your own password needs your current password (`govern user passwd` "
                                 "asks for it; with --password-stdin it is the first line, the new one the second).")
            wait = _passwd_wait(conn, name, now)
            if wait > 0:
                self._log(conn, "auth.failed", f"user:{name}", {"user": name, "client": _PASSWD, "via": "passwd",
                                                                "reason": "throttled"})
                return stored, wait
            auth.record_failure(conn, user=name, client=_PASSWD, when=now)  # until the password checks out
            audit_log.serialise(conn)
            return stored, 0.0

        stored, wait = self._run(check)
        if wait > 0:
            raise NotAllowed(f"too many wrong passwords for {name}; try again in {math.ceil(wait)} s.")
        matches = stored is None or password_matches(stored, current or "")

        def unit(conn: duckdb.DuckDBPyConnection) -> User | None:
            self._authorize(conn, Action.VIEW if stored is not None else Action.MANAGE_USERS)
            if stored is not None and not matches:
                self._log(conn, "auth.failed", f"user:{name}", {"user": name, "client": _PASSWD, "via": "passwd",
                                                                "reason": "password"})
                return None
            if stored is not None:
                if users.password_hash(conn, name) != stored:
                    raise Conflict(f"the password of {name} changed meanwhile; run the command again.")
                auth.clear_failures(conn, user=name)
            elif users.get_user(conn, name) is None:
                raise NotFound(f"user {name!r} does not exist.")
            users.set_password_hash(conn, name, password_hash)
            # Sessions opened with the old password end (the caller's own stays); API tokens are separate.
            keep = self._auth.get("token") if self._auth else None
            revoked = auth.revoke_all(conn, name, ("session", "dashboard", "oidc"), _now(), keep=keep)
            self._log(conn, "user.passwd", f"user:{name}", {"name": name, "password_set": password is not None,
                                                            "password_sha256": password_digest(password_hash),
                                                            "sessions_revoked": revoked})
            return _present(users.get_user(conn, name), f"user {name}")

        changed = self._run(unit)
        if changed is None:
            raise NotAllowed("the current password is wrong.")
        return changed


_PASSWD = "user passwd"  # the client a failed current password is counted against, beside the user


def _passwd_wait(conn: duckdb.DuckDBPyConnection, name: str, now: datetime) -> float:
    by_user, latest, _, _, _ = auth.recent_failures(conn, user=name, client=_PASSWD, since=now - FAILURE_WINDOW)
    return backoff_seconds(by_user, latest, now)


def _hash(password: str | None) -> str | None:
    from argon2 import PasswordHasher
    if password is None:
        return None
    check_password_text(password)
    if len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters.")
    if len(password) > 1024:
        raise InvalidInput("a password may have at most 1024 characters.")
    return PasswordHasher().hash(password)
