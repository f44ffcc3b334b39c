"""Store set-up and users."""

from __future__ import annotations

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from governance import __version__
from governance.errors import Conflict, InvalidInput, NotAllowed
from governance.keys import load_or_create_key
from governance.records import StoreStatus, User
from governance.roles import Action, Role, parse_role
from governance.service.base import (
    ServiceBase,
    _now,
    check_name,
)
from governance.store import audit_log, migrations, registry, users


class UserActions(ServiceBase):

    def init(self, *, admin: str | None = None, password: str | None = None) -> StoreStatus:
        """Create the store (idempotent) and, on a store with no users, its first admin."""
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        load_or_create_key(self.settings.keys_dir)

        def unit(conn: duckdb.DuckDBPyConnection) -> None:
            applied = migrations.apply_pending(conn)
            if applied:
                self._log(conn, "store.init" if "m001_users_registry_artifacts" in applied else "store.migrate",
                          "store", {"applied": applied, "govern_version": __version__})
            if admin is None:
                return
            check_name("user", admin)
            existing = users.get_user(conn, admin)
            if existing is not None:
                if existing.role is not Role.ADMIN:
                    raise Conflict(f"user {admin!r} already exists as {existing.role.value}, not admin.")
                return
            if users.count_users(conn):
                raise NotAllowed(
                    "the store already has users, so `init --admin` cannot add one; "
                    "an admin adds users with `govern user add NAME --role admin`."
                )
            users.insert_user(conn, name=admin, role=Role.ADMIN, password_hash=_hash(password),
                              created_at=_now(), created_by=None)
            audit_log.append_event(conn, actor=admin, action="user.add", entity=f"user:{admin}",
                                   payload={"name": admin, "role": "admin", "bootstrap": True})

        self.database.run(unit, create=True)
        self._mark_migrated()
        return self._status_unchecked()

    def status(self) -> StoreStatus:
        self._run(lambda conn: self._authorize(conn, Action.VIEW))
        return self._status_unchecked()

    def _status_unchecked(self) -> StoreStatus:
        def unit(conn: duckdb.DuckDBPyConnection) -> StoreStatus:
            head = audit_log.head(conn)
            counts = registry.counts(conn)
            return StoreStatus(
                home=str(self.settings.home), database=str(self.database.path),
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
            users.insert_user(conn, name=name, role=parsed, password_hash=password_hash,
                              created_at=_now(), created_by=self.actor)
            self._log(conn, "user.add", f"user:{name}",
                      {"name": name, "role": parsed.value, "password_set": password is not None})
            return users.get_user(conn, name)

        return self._run(unit)

    def list_users(self) -> list[User]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[User]:
            self._authorize(conn, Action.MANAGE_USERS)
            return users.list_users(conn)

        return self._run(unit)

    def identify(self, *, name: str) -> User:
        """The user an external sign-in (OIDC) vouched for. The identity provider says who someone is,
        never what they may do: the role is the one this store gives that user."""
        def unit(conn: duckdb.DuckDBPyConnection) -> User | None:
            return users.get_user(conn, name)

        user = self._run(unit) if name else None
        if user is None:
            raise NotAllowed(f"{name!r} signed in, but is not a user of govern; an admin adds them with "
                             "`govern user add`.")
        return user

    def check_password(self, *, name: str, password: str) -> User:
        """The user if `password` is theirs; NotAllowed (saying nothing of which part was wrong) if not."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[User | None, str | None]:
            return users.get_user(conn, name), users.password_hash(conn, name)

        user, stored = self._run(unit)
        try:
            if user is None or stored is None or not PasswordHasher().verify(stored, password):
                raise VerificationError()
        except VerificationError:
            raise NotAllowed("unknown user or wrong password.") from None
        return user


def _hash(password: str | None) -> str | None:
    if password is None:
        return None
    if len(password) < 8:
        raise InvalidInput("a password needs at least 8 characters.")
    return PasswordHasher().hash(password)


