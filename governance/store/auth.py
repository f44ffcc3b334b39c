"""SQL of credentials (sessions and API tokens, stored as sha256 of their secret) and failed sign-ins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from governance.records import Record
from governance.store.rows import one_row

_TOKEN = "id, user_name, kind, name, secret_sha256, created_at, created_by, expires_at, revoked_at"


@dataclass(frozen=True)
class TokenRow(Record):
    id: str
    user: str
    kind: str  # session | dashboard | oidc | api
    name: str | None
    secret_sha256: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    revoked_at: datetime | None


def insert_token(conn: duckdb.DuckDBPyConnection, token: TokenRow) -> None:
    conn.execute(f"INSERT INTO auth_tokens ({_TOKEN}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [token.id, token.user, token.kind, token.name, token.secret_sha256, token.created_at,
                  token.created_by, token.expires_at, token.revoked_at])


def get_token(conn: duckdb.DuckDBPyConnection, token_id: str) -> TokenRow | None:
    row = conn.execute(f"SELECT {_TOKEN} FROM auth_tokens WHERE id = ?", [token_id]).fetchone()
    return TokenRow(*row) if row else None


def all_credentials(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every token and session ever issued as (id, user): what the log must have logged issuing."""
    return [(i, u) for i, u in conn.execute("SELECT id, user_name FROM auth_tokens ORDER BY id").fetchall()]


def list_tokens(conn: duckdb.DuckDBPyConnection, *, user: str | None, kinds: tuple[str, ...]) -> list[TokenRow]:
    rows = conn.execute(
        f"SELECT {_TOKEN} FROM auth_tokens WHERE (? IS NULL OR user_name = ?) AND list_contains(?, kind) "
        "ORDER BY created_at, id", [user, user, list(kinds)]).fetchall()
    return [TokenRow(*row) for row in rows]


def revoke_token(conn: duckdb.DuckDBPyConnection, token_id: str, when: datetime) -> None:
    conn.execute("UPDATE auth_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [when, token_id])


def revoke_all(conn: duckdb.DuckDBPyConnection, user: str, kinds: tuple[str, ...], when: datetime,
               keep: str | None = None) -> list[str]:
    """Revoke every live credential of `user` of these kinds (but `keep`); the ids revoked."""
    ids = [row[0] for row in conn.execute(
        "SELECT id FROM auth_tokens WHERE user_name = ? AND list_contains(?, kind) AND revoked_at IS NULL "
        "AND id IS DISTINCT FROM ?", [user, list(kinds), keep]).fetchall()]
    if ids:
        conn.execute("UPDATE auth_tokens SET revoked_at = ? WHERE list_contains(?, id)", [when, ids])
    return ids


def record_failure(conn: duckdb.DuckDBPyConnection, *, user: str, client: str, when: datetime) -> None:
    conn.execute("INSERT INTO signin_failures VALUES (?, ?, ?)", [user, client, when])


PENDING = "pending:"  # the client of an attempt whose password is being checked: the user's count takes it, the
# client's only once it failed (parallel correct sign-ins of several users from one client had throttled each other)


def confirm_failure(conn: duckdb.DuckDBPyConnection, *, user: str, client: str, when: datetime) -> None:
    """An attempt recorded as pending (client PENDING + client) failed: it counts for its client now too."""
    conn.execute("UPDATE signin_failures SET client = ? WHERE user_name = ? AND client = ? AND failed_at = ?",
                 [client, user, PENDING + client, when])


def recent_failures(conn: duckdb.DuckDBPyConnection, *, user: str, client: str, since: datetime,
                    pending_since: datetime | None = None) -> tuple[int, datetime | None, int, datetime | None, int]:
    """(failures for the user, the latest, failures from the client, the latest) since `since`, and the client's
    attempts still pending since `pending_since` (a check takes a second; older ones are killed processes')."""
    row = one_row(
        conn, "SELECT count(*) FILTER (WHERE user_name = ?), max(failed_at) FILTER (WHERE user_name = ?), "
        "count(*) FILTER (WHERE client = ?), max(failed_at) FILTER (WHERE client = ?), "
        "count(*) FILTER (WHERE client = ? AND failed_at >= ?) FROM signin_failures WHERE failed_at >= ?",
        [user, user, client, client, PENDING + client, pending_since or since, since])
    return row[0], row[1], row[2], row[3], row[4]


def clear_failures(conn: duckdb.DuckDBPyConnection, *, user: str) -> None:
    conn.execute("DELETE FROM signin_failures WHERE user_name = ?", [user])
