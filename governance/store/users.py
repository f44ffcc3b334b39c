"""SQL of users."""

from __future__ import annotations

import hashlib
from datetime import datetime

import duckdb

from governance.errors import Conflict
from governance.records import User
from governance.roles import Role
from governance.store.rows import Row, one_int

_COLUMNS = "name, role, password_hash IS NOT NULL, created_at, created_by, disabled_at"


def _user(row: Row) -> User:
    try:
        role = Role(row[1])
    except ValueError:  # written around the service: a sentence, not "unexpected failure (ValueError)"
        raise Conflict(f"user {row[0]!r} has the role {row[1]!r} in the store, which is none of "
                       f"{', '.join(r.value for r in Role)}: the users table was changed around the service "
                       "(`govern status`, as another user, names what differs from the log).") from None
    return User(row[0], role, bool(row[2]), row[3], row[4], row[5])


def accounts(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, bool, str | None]]:
    """Every user as stored, (name, role as text, enabled, password hash): read raw, so a role written around
    the service is compared with the log rather than refused."""
    return [(str(name), str(role), disabled_at is None, password_hash) for name, role, disabled_at, password_hash
            in conn.execute("SELECT name, role, disabled_at, password_hash FROM users ORDER BY name").fetchall()]


def get_user(conn: duckdb.DuckDBPyConnection, name: str) -> User | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", [name]).fetchone()
    return _user(row) if row else None


def users_named_alike(conn: duckdb.DuckDBPyConnection, name: str) -> list[User]:
    """The users whose name is `name` ignoring case (Ravi and ravi)."""
    return [_user(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM users WHERE lower(name) = lower(?) "
                                               "ORDER BY name", [name]).fetchall()]


def list_users(conn: duckdb.DuckDBPyConnection) -> list[User]:
    return [_user(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name").fetchall()]


def insert_user(
    conn: duckdb.DuckDBPyConnection, *, name: str, role: Role, password_hash: str | None,
    created_at: datetime, created_by: str | None,
) -> None:
    conn.execute(
        "INSERT INTO users (name, role, password_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
        [name, role.value, password_hash, created_at, created_by],
    )


def password_hash(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    row = conn.execute("SELECT password_hash FROM users WHERE name = ?", [name]).fetchone()
    return row[0] if row else None


def count_users(conn: duckdb.DuckDBPyConnection) -> int:
    return one_int(conn, "SELECT count(*) FROM users")


def set_password_hash(conn: duckdb.DuckDBPyConnection, name: str, password_hash: str | None) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", [password_hash, name])


def set_disabled(conn: duckdb.DuckDBPyConnection, name: str, disabled_at: datetime | None) -> None:
    conn.execute("UPDATE users SET disabled_at = ? WHERE name = ?", [disabled_at, name])


def count_enabled_admins(conn: duckdb.DuckDBPyConnection) -> int:
    return one_int(conn, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL")


def password_digest(password_hash: str | None) -> str | None:
    """sha256 of a stored (argon2, salted) password hash, for the log: `status` holds the stored hash against the
    last one logged, so a hash copied in around the service (signing in as an admin with a viewer's password) is
    named. It tells nothing of the password: the salt is not in it."""
    return hashlib.sha256(password_hash.encode()).hexdigest() if password_hash is not None else None
