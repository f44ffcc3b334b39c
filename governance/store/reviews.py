"""SQL of the review queue (claims, judgments, gold items), sign-offs, alias history and feedback sets."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from governance.records import AliasMove, Judgment, ReviewItem, SignOff
from governance.store.gates import _SELECT_ITEMS, item_from_row

_JUDGMENT = "item_id, reviewer, verdict, corrected_label, comment, judged_at"
_SIGNOFF = ("model, version, reviewer, revision, decision, comment, created_at, artifact_sha256, evaluation_id, gate_id, "
            "coalesce(acknowledged_blocked, false)")
_SIGNOFF_WRITE = _SIGNOFF.replace("coalesce(acknowledged_blocked, false)", "acknowledged_blocked")
_MOVE = ("model, seq, alias, version, previous_version, action, gate_id, override_reason, override_expires, actor, "
         "moved_at")


def get_item(conn: duckdb.DuckDBPyConnection, item_id: str) -> ReviewItem | None:
    row = conn.execute(_SELECT_ITEMS + " WHERE id = ?", [item_id]).fetchone()
    return item_from_row(row) if row else None


def gold_answer(conn: duckdb.DuckDBPyConnection, item_id: str) -> dict | None:
    row = conn.execute("SELECT gold_json FROM review_items WHERE id = ?", [item_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else None


def set_gold(conn: duckdb.DuckDBPyConnection, item_id: str, answer: dict) -> None:
    conn.execute("UPDATE review_items SET gold_json = ? WHERE id = ?", [json.dumps(answer, sort_keys=True), item_id])


def set_due(conn: duckdb.DuckDBPyConnection, item_id: str, due_at: datetime | None) -> None:
    conn.execute("UPDATE review_items SET due_at = ? WHERE id = ?", [due_at, item_id])


def claim(conn: duckdb.DuckDBPyConnection, item_id: str, reviewer: str, now: datetime, expires: datetime) -> bool:
    """Take the item if it is open or its claim lapsed; False if someone else holds it.

    One conditional UPDATE: two claimers racing both write the same row, so DuckDB fails one at
    commit and its retry finds the item taken.
    """
    count = conn.execute(
        "UPDATE review_items SET status = 'claimed', assignee = ?, claim_expires_at = ? "
        "WHERE id = ? AND (status = 'open' OR (status = 'claimed' AND (claim_expires_at < ? OR assignee = ?)))",
        [reviewer, expires, item_id, now, reviewer],
    ).fetchone()[0]
    return count == 1


def release_claim(conn: duckdb.DuckDBPyConnection, item_id: str) -> None:
    conn.execute("UPDATE review_items SET status = 'open', assignee = NULL, claim_expires_at = NULL WHERE id = ?",
                 [item_id])


def resolve(conn: duckdb.DuckDBPyConnection, item_id: str, status: str, now: datetime) -> None:
    conn.execute("UPDATE review_items SET status = ?, resolved_at = ?, claim_expires_at = NULL WHERE id = ?",
                 [status, now, item_id])


def insert_judgment(conn: duckdb.DuckDBPyConnection, judgment: Judgment) -> None:
    conn.execute(f"INSERT INTO judgments ({_JUDGMENT}) VALUES (?, ?, ?, ?, ?, ?)",
                 [judgment.item_id, judgment.reviewer, judgment.verdict, judgment.corrected_label, judgment.comment,
                  judgment.judged_at])


def judgments_of(conn: duckdb.DuckDBPyConnection, item_id: str) -> list[Judgment]:
    rows = conn.execute(f"SELECT {_JUDGMENT} FROM judgments WHERE item_id = ? ORDER BY judged_at, reviewer",
                        [item_id]).fetchall()
    return [Judgment(*row) for row in rows]


def all_judgments(conn: duckdb.DuckDBPyConnection, model: str | None = None) -> list[tuple[Judgment, str]]:
    """Every judgment (with its item's model), optionally of one model's items."""
    rows = conn.execute(
        f"SELECT {', '.join('j.' + c.strip() for c in _JUDGMENT.split(','))}, i.model FROM judgments j "
        "JOIN review_items i ON i.id = j.item_id WHERE (? IS NULL OR i.model = ?) ORDER BY j.item_id, j.reviewer",
        [model, model]).fetchall()
    return [(Judgment(*row[:6]), row[6]) for row in rows]


def gold_judgments(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int | None, str]]:
    """(reviewer, verdict, corrected label, gold answer json) for every judgment of a gold item."""
    return conn.execute(
        "SELECT j.reviewer, j.verdict, j.corrected_label, i.gold_json FROM judgments j "
        "JOIN review_items i ON i.id = j.item_id WHERE i.gold_json IS NOT NULL ORDER BY j.reviewer").fetchall()


def corrections(conn: duckdb.DuckDBPyConnection, model: str) -> list[tuple]:
    """Resolved example items of a model whose consensus is a corrected label, with provenance."""
    return conn.execute(
        "SELECT i.id, i.version, i.gate_decision_id, i.evidence_json, j.reviewer, j.corrected_label, j.judged_at "
        "FROM review_items i JOIN judgments j ON j.item_id = i.id "
        "WHERE i.model = ? AND i.kind = 'example' AND i.status = 'resolved' AND i.gold_json IS NULL "
        "ORDER BY i.id, j.judged_at, j.reviewer", [model]).fetchall()


def next_signoff_revision(conn: duckdb.DuckDBPyConnection, model: str, version: str, reviewer: str) -> int:
    return conn.execute("SELECT coalesce(max(revision), 0) + 1 FROM signoffs WHERE model = ? AND version = ? AND "
                        "reviewer = ?", [model, version, reviewer]).fetchone()[0]


def insert_signoff(conn: duckdb.DuckDBPyConnection, signoff: SignOff) -> None:
    conn.execute(f"INSERT INTO signoffs ({_SIGNOFF_WRITE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [signoff.model, signoff.version, signoff.reviewer, signoff.revision, signoff.decision,
                  signoff.comment, signoff.created_at, signoff.artifact_sha256, signoff.evaluation_id,
                  signoff.gate_id, signoff.acknowledged_blocked])


def current_signoffs(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[SignOff]:
    """Each reviewer's latest decision on the version (withdrawals included)."""
    rows = conn.execute(
        f"SELECT {_SIGNOFF} FROM signoffs WHERE model = ? AND version = ? "
        "QUALIFY revision = max(revision) OVER (PARTITION BY reviewer) ORDER BY reviewer", [model, version]).fetchall()
    return [SignOff(*row) for row in rows]


def rejections_of_artifact(conn: duckdb.DuckDBPyConnection, artifact_sha256: str) -> list[SignOff]:
    """Standing rejections (each reviewer's latest decision on a version is `reject`) of any version, of
    any model, whose artifact is `artifact_sha256`: a rejection follows the bytes, not the version name."""
    rows = conn.execute(
        f"SELECT {_SIGNOFF} FROM (SELECT s.* FROM signoffs s JOIN versions v ON v.model = s.model AND "
        "v.version = s.version WHERE v.artifact_sha256 = ? "
        "QUALIFY s.revision = max(s.revision) OVER (PARTITION BY s.model, s.version, s.reviewer)) "
        "WHERE decision = 'reject' ORDER BY model, version, reviewer", [artifact_sha256]).fetchall()
    return [SignOff(*row) for row in rows]


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
    return conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM alias_history WHERE model = ?", [model]).fetchone()[0]


def latest_feedback(conn: duckdb.DuckDBPyConnection, model: str) -> tuple[int, str, int] | None:
    row = conn.execute("SELECT version, dataset_sha256, corrections FROM feedback_datasets WHERE model = ? "
                       "ORDER BY version DESC LIMIT 1", [model]).fetchone()
    return tuple(row) if row else None


def insert_feedback(conn: duckdb.DuckDBPyConnection, model: str, version: int, sha256: str, count: int,
                    now: datetime, actor: str) -> None:
    conn.execute("INSERT INTO feedback_datasets VALUES (?, ?, ?, ?, ?, ?)", [model, version, sha256, count, now, actor])
