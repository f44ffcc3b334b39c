"""SQL of the review queue's items: queueing without duplicates, claims, gold answers, resolution."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from governance.records import ItemStatus, Priority, ReviewItem, stored
from governance.store.rows import Row, one_int

_ITEM = ("id, model, version, kind, rule_id, gate_decision_id, priority, status, judgments_required, "
         "evidence_json, created_at, created_by")
_ITEM_READ = _ITEM + (", assignee, claim_expires_at, due_at, gold_json IS NOT NULL, resolved_at, "
                      "json_extract_string(gold_json, '$.shown')")
_SELECT_ITEMS = f"SELECT {_ITEM_READ} FROM review_items"


def insert_items(conn: duckdb.DuckDBPyConnection, items: list[tuple[ReviewItem, str]]) -> list[str]:
    """Insert (item, dedupe key) pairs, skipping keys already queued; return the id holding each key."""
    if not items:
        return []
    # Portable "skip keys already queued" (DuckLake has no UNIQUE for ON CONFLICT): the unit's audit append
    # serialises concurrent gates, so the check cannot race.
    keys = [key for _, key in items]
    queued = {row[0] for row in conn.execute("SELECT dedupe_key FROM review_items WHERE list_contains(?, dedupe_key)",
                                             [keys]).fetchall()}
    fresh: dict[str, ReviewItem] = {}
    for item, key in items:
        if key not in queued:
            fresh.setdefault(key, item)
    if fresh:
        conn.executemany(
            f"INSERT INTO review_items (dedupe_key, {_ITEM}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[key, i.id, i.model, i.version, i.kind, i.rule_id, i.gate_decision_id, i.priority, i.status,
              i.judgments_required, json.dumps(i.evidence, sort_keys=True, default=str), i.created_at, i.created_by]
             for key, i in fresh.items()],
        )
    holders = dict(conn.execute("SELECT dedupe_key, id FROM review_items WHERE list_contains(?, dedupe_key)",
                                [keys]).fetchall())
    return [holders[key] for key in keys]


def existing_keys(conn: duckdb.DuckDBPyConnection, keys: list[str]) -> set[str]:
    """The dedupe keys among `keys` already queued as review items."""
    return {row[0] for row in conn.execute("SELECT dedupe_key FROM review_items WHERE list_contains(?, dedupe_key)",
                                           [keys]).fetchall()}


def _item(row: Row) -> ReviewItem:
    values = list(row)
    values[6], values[7] = stored(Priority, values[6]), stored(ItemStatus, values[7])
    values[9] = json.loads(values[9])
    values[17] = json.loads(values[17]) if values[17] else None
    return ReviewItem(*values)


def get_item(conn: duckdb.DuckDBPyConnection, item_id: str) -> ReviewItem | None:
    row = conn.execute(_SELECT_ITEMS + " WHERE id = ?", [item_id]).fetchone()
    return _item(row) if row else None


def list_items(conn: duckdb.DuckDBPyConnection, *, model: str | None = None, version: str | None = None,
               status: str | None = None, kind: str | None = None) -> list[ReviewItem]:
    rows = conn.execute(
        _SELECT_ITEMS + " WHERE (? IS NULL OR model = ?) AND (? IS NULL OR version = ?) AND (? IS NULL OR status = ?) "
        "AND (? IS NULL OR kind = ?) ORDER BY created_at, rule_id, kind DESC, id",
        [model, model, version, version, status, status, kind, kind]).fetchall()
    return [_item(row) for row in rows]


def count_open_items(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> int:
    """The version's open items, gold items aside: they measure reviewers, not the version, and one waiting
    for every reviewer had blocked the gate's open-reviews rule (and shown reviewers a count their own queue
    did not)."""
    return one_int(conn, "SELECT count(*) FROM review_items WHERE model = ? AND version = ? AND status IN "
                   "('open', 'claimed') AND kind <> 'gold'", [model, version])


def gold_answer(conn: duckdb.DuckDBPyConnection, item_id: str) -> dict[str, Any] | None:
    """A gold item's known answer: its verdict and label (not how it shows itself to reviewers)."""
    row = conn.execute("SELECT gold_json FROM review_items WHERE id = ?", [item_id]).fetchone()
    if not row or not row[0]:
        return None
    return {k: v for k, v in json.loads(row[0]).items() if k != "shown"}


def sampled_example(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> ReviewItem | None:
    """The newest example a gate sampled for the version (gold items pass for its kin)."""
    row = conn.execute(_SELECT_ITEMS + " WHERE model = ? AND version = ? AND kind = 'example' AND gate_decision_id "
                       "IS NOT NULL AND gold_json IS NULL ORDER BY created_at DESC, id DESC LIMIT 1",
                       [model, version]).fetchone()
    return _item(row) if row else None


def set_gold(conn: duckdb.DuckDBPyConnection, item_id: str, answer: dict[str, Any]) -> None:
    conn.execute("UPDATE review_items SET gold_json = ? WHERE id = ?", [json.dumps(answer, sort_keys=True), item_id])


def set_due(conn: duckdb.DuckDBPyConnection, item_id: str, due_at: datetime | None) -> None:
    conn.execute("UPDATE review_items SET due_at = ? WHERE id = ?", [due_at, item_id])


def claim(conn: duckdb.DuckDBPyConnection, item_id: str, reviewer: str, now: datetime, expires: datetime) -> bool:
    """Take the item if it is open or its claim lapsed; False if someone else holds it.

    One conditional UPDATE: two claimers racing both write the same row, so DuckDB fails one at
    commit and its retry finds the item taken.
    """
    count = one_int(
        conn, "UPDATE review_items SET status = 'claimed', assignee = ?, claim_expires_at = ? "
        "WHERE id = ? AND (status = 'open' OR (status = 'claimed' AND (claim_expires_at < ? OR assignee = ?)))",
        [reviewer, expires, item_id, now, reviewer],
    )
    return count == 1


def release_claim(conn: duckdb.DuckDBPyConnection, item_id: str) -> None:
    conn.execute("UPDATE review_items SET status = 'open', assignee = NULL, claim_expires_at = NULL WHERE id = ?",
                 [item_id])


def resolve(conn: duckdb.DuckDBPyConnection, item_id: str, status: str, now: datetime) -> None:
    conn.execute("UPDATE review_items SET status = ?, resolved_at = ?, claim_expires_at = NULL WHERE id = ?",
                 [status, now, item_id])
