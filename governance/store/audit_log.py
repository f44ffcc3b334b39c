"""SQL of the audit log: append one event in the caller's transaction, read events back."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import duckdb

from governance.audit_chain import GENESIS_HASH, AuditEvent, seal
from governance.store.rows import one_int

_COLUMNS = "seq, ts, actor, action, entity, payload, prev_hash, hash"


def utc_timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_event(
    conn: duckdb.DuckDBPyConnection, *, actor: str | None, action: str, entity: str, payload: dict[str, Any]
) -> AuditEvent:
    """Append an event after the current head, in the caller's transaction.

    Two transactions appending at once both pick the same seq and prev_hash; both update the head
    row, so the second fails at commit (and on the file store the PRIMARY KEY and UNIQUE(prev_hash)
    constraints as well) and its unit of work is retried.
    """
    head = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    event = seal(
        prev_hash=prev_hash, seq=seq, ts=utc_timestamp(), actor=actor, action=action, entity=entity, payload=payload
    )
    conn.execute(
        f"INSERT INTO audit_events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [event.seq, event.ts, event.actor, event.action, event.entity, event.payload, event.prev_hash, event.hash],
    )
    # The head row is what serialises appends: a concurrent append updated it too and one of the two
    # fails at commit (on DuckLake as on the file), so there is never a fork.
    if head:
        conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", [event.seq, event.hash])
    else:
        conn.execute("INSERT INTO audit_head VALUES (1, ?, ?)", [event.seq, event.hash])
    return event


def serialise(conn: duckdb.DuckDBPyConnection) -> None:
    """Make this transaction collide with any concurrent audited write (the head row), so a check-then-
    insert in it cannot race, on DuckLake as on the file, without appending an event."""
    conn.execute("UPDATE audit_head SET seq = seq WHERE id = 1")


def read_events(conn: duckdb.DuckDBPyConnection) -> list[AuditEvent]:
    # seq is inside each hash, so renumbering to hide a deletion or reordering breaks the chain.
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_events ORDER BY seq").fetchall()
    return [AuditEvent(*row) for row in rows]


def hashes(conn: duckdb.DuckDBPyConnection) -> dict[int, str]:
    return dict(conn.execute("SELECT seq, hash FROM audit_events").fetchall())


def event_count(conn: duckdb.DuckDBPyConnection) -> int:
    return one_int(conn, "SELECT count(*) FROM audit_events")


def head(conn: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    row = conn.execute("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    return (row[0], row[1]) if row else None


def filter_events(conn: duckdb.DuckDBPyConnection, *, model: str | None, actor: str | None, action: str | None,
                  since: str | None, until: str | None, limit: int) -> tuple[int, list[AuditEvent]]:
    """Events matching every given filter, newest first, at most `limit`, and how many matched.

    `model` matches the model, its versions, and the prediction sets, review items and jobs that
    belong to it; `action` matches exactly or as a prefix before a dot ("review" → review.judge);
    `since`/`until` are ISO UTC timestamps compared with each event's ts (inclusive).
    """
    where, params = [], []
    if model is not None:
        where.append("(entity = 'model:' || ? OR starts_with(entity, 'version:' || ? || '/') "
                     "OR entity IN (SELECT 'prediction_set:' || id FROM prediction_sets WHERE model = ?) "
                     "OR entity IN (SELECT 'review_item:' || id FROM review_items WHERE model = ?) "
                     "OR entity IN (SELECT 'job:' || id FROM jobs WHERE model = ?))")
        params += [model] * 5
    if actor is not None:
        where.append("actor = ?")
        params.append(actor)
    if action is not None:
        where.append("(action = ? OR starts_with(action, ? || '.'))")
        params += [action, action]
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts <= ?")
        params.append(until)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = one_int(conn, f"SELECT count(*) FROM audit_events{clause}", params)
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_events{clause} ORDER BY seq DESC LIMIT ?",
                        [*params, limit]).fetchall()
    return total, [AuditEvent(*row) for row in rows]


def payloads(conn: duckdb.DuckDBPyConnection, *, action: str, entity: str, actor: str) -> list[dict[str, Any]]:
    """The payloads of `actor`'s `action` events on `entity`, newest first."""
    found = conn.execute("SELECT payload FROM audit_events WHERE action = ? AND entity = ? AND actor = ? "
                         "ORDER BY seq DESC", [action, entity, actor]).fetchall()
    return [json.loads(payload) for (payload,) in found]


def actors(conn: duckdb.DuckDBPyConnection, *, action: str, entity: str) -> list[str]:
    """Who did `action` on `entity`, each once, first first."""
    found = conn.execute("SELECT actor FROM audit_events WHERE action = ? AND entity = ? AND actor IS NOT NULL "
                         "ORDER BY seq", [action, entity]).fetchall()
    return list(dict.fromkeys(actor for (actor,) in found))


def entity_history(conn: duckdb.DuckDBPyConnection, entity: str) -> list[tuple[int, str | None, str, dict[str, Any]]]:
    """Every event on `entity`, oldest first: (seq, actor, action, payload)."""
    return [(seq, actor, action, json.loads(payload)) for seq, actor, action, payload in conn.execute(
        "SELECT seq, actor, action, payload FROM audit_events WHERE entity = ? ORDER BY seq", [entity]).fetchall()]
