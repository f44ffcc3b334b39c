"""SQL of model aliases (production) and their history of moves."""

from __future__ import annotations

from typing import Any

import duckdb

from governance.records import AliasMove
from governance.store.rows import one_int

_MOVE = ("model, seq, alias, version, previous_version, action, gate_id, override_reason, override_expires, actor, "
         "moved_at")


def get_alias(conn: duckdb.DuckDBPyConnection, model: str, alias: str) -> str | None:
    row = conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", [model, alias]).fetchone()
    return row[0] if row else None


def set_alias(conn: duckdb.DuckDBPyConnection, *, model: str, alias: str, version: str, actor: str) -> None:
    """Point `alias` (production) at `version`; the caller logs the move in the same transaction."""
    conn.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", [model, alias])
    conn.execute("INSERT INTO aliases (model, alias, version, set_at, set_by) VALUES (?, ?, ?, now()::TIMESTAMP, ?)",
                 [model, alias, version, actor])


def insert_move(conn: duckdb.DuckDBPyConnection, move: AliasMove) -> None:
    conn.execute(f"INSERT INTO alias_history ({_MOVE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [move.model, move.seq, move.alias, move.version, move.previous_version, move.action, move.gate_id,
                  move.override_reason, move.override_expires, move.actor, move.moved_at])


def history(conn: duckdb.DuckDBPyConnection, model: str) -> list[AliasMove]:
    rows = conn.execute(f"SELECT {_MOVE} FROM alias_history WHERE model = ? ORDER BY seq", [model]).fetchall()
    return [AliasMove(*row) for row in rows]


def current_moves(conn: duckdb.DuckDBPyConnection) -> list[AliasMove]:
    """Each model's latest alias move: what its production alias rests on now."""
    rows = conn.execute(f"SELECT {_MOVE} FROM alias_history QUALIFY seq = max(seq) OVER (PARTITION BY model) "
                        "ORDER BY model").fetchall()
    return [AliasMove(*row) for row in rows]


def next_move_seq(conn: duckdb.DuckDBPyConnection, model: str) -> int:
    return one_int(conn, "SELECT coalesce(max(seq), 0) + 1 FROM alias_history WHERE model = ?", [model])


def all_moves(conn: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every alias move as (model, action, version, override_expires), by model then seq: what the audit log
    must have logged."""
    return [(m, a, v, e) for m, a, v, e in conn.execute(
        "SELECT model, action, version, override_expires FROM alias_history ORDER BY model, seq").fetchall()]
