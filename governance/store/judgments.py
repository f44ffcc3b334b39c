"""SQL of reviewers' judgments and the label corrections they add up to."""

from __future__ import annotations

from datetime import datetime

import duckdb

from governance.records import Judgment, Verdict, stored
from governance.store.rows import Row

_JUDGMENT = "item_id, reviewer, verdict, corrected_label, comment, judged_at"


def _judgment(row: Row) -> Judgment:
    item_id, reviewer, verdict, *rest = row
    return Judgment(item_id, reviewer, stored(Verdict, verdict), *rest)


def insert_judgment(conn: duckdb.DuckDBPyConnection, judgment: Judgment) -> None:
    conn.execute(f"INSERT INTO judgments ({_JUDGMENT}) VALUES (?, ?, ?, ?, ?, ?)",
                 [judgment.item_id, judgment.reviewer, judgment.verdict, judgment.corrected_label, judgment.comment,
                  judgment.judged_at])


def judgments_of(conn: duckdb.DuckDBPyConnection, item_id: str) -> list[Judgment]:
    rows = conn.execute(f"SELECT {_JUDGMENT} FROM judgments WHERE item_id = ? ORDER BY judged_at, reviewer",
                        [item_id]).fetchall()
    return [_judgment(row) for row in rows]


def all_judgments(conn: duckdb.DuckDBPyConnection, model: str | None = None) -> list[tuple[Judgment, str]]:
    """Every judgment (with its item's model), optionally of one model's items."""
    rows = conn.execute(
        f"SELECT {', '.join('j.' + c.strip() for c in _JUDGMENT.split(','))}, i.model FROM judgments j "
        "JOIN review_items i ON i.id = j.item_id WHERE (? IS NULL OR i.model = ?) ORDER BY j.item_id, j.reviewer",
        [model, model]).fetchall()
    return [(_judgment(row[:6]), row[6]) for row in rows]


def gold_judgments(conn: duckdb.DuckDBPyConnection, model: str | None = None,
                   resolved_only: bool = False) -> list[tuple[str, str, int | None, str]]:
    """(reviewer, verdict, corrected label, gold answer json) for every judgment of a gold item (of
    `model`'s items if given; with `resolved_only`, of gold items every judgment they need has reached)."""
    return conn.execute(
        "SELECT j.reviewer, j.verdict, j.corrected_label, i.gold_json FROM judgments j "
        "JOIN review_items i ON i.id = j.item_id WHERE i.gold_json IS NOT NULL AND (? IS NULL OR i.model = ?) "
        "AND (NOT ? OR i.status = 'resolved') ORDER BY j.reviewer", [model, model, resolved_only]).fetchall()


def corrections(conn: duckdb.DuckDBPyConnection, model: str) -> list[Row]:
    """Resolved example items of a model whose consensus is a corrected label, with provenance."""
    return conn.execute(
        "SELECT i.id, i.version, i.gate_decision_id, i.evidence_json, j.reviewer, j.corrected_label, j.judged_at "
        "FROM review_items i JOIN judgments j ON j.item_id = i.id "
        "WHERE i.model = ? AND i.kind = 'example' AND i.status = 'resolved' AND i.gold_json IS NULL "
        "ORDER BY i.id, j.judged_at, j.reviewer", [model]).fetchall()


def judgment_times(conn: duckdb.DuckDBPyConnection, reviewer: str) -> dict[str, datetime]:
    """When `reviewer` judged each item they judged, by item id."""
    return dict(conn.execute("SELECT item_id, judged_at FROM judgments WHERE reviewer = ?", [reviewer]).fetchall())


def judged_by(conn: duckdb.DuckDBPyConnection, reviewer: str) -> set[str]:
    """The ids of the items `reviewer` has judged."""
    return {row[0] for row in conn.execute("SELECT item_id FROM judgments WHERE reviewer = ?", [reviewer]).fetchall()}
