"""SQL of feedback data sets: the versioned corrections a retrain folds in."""

from __future__ import annotations

from datetime import datetime

import duckdb


def latest_feedback(conn: duckdb.DuckDBPyConnection, model: str) -> tuple[int, str, int] | None:
    row = conn.execute("SELECT version, dataset_sha256, corrections FROM feedback_datasets WHERE model = ? "
                       "ORDER BY version DESC LIMIT 1", [model]).fetchone()
    return tuple(row) if row else None


def insert_feedback(conn: duckdb.DuckDBPyConnection, model: str, version: int, sha256: str, count: int,
                    now: datetime, actor: str) -> None:
    conn.execute("INSERT INTO feedback_datasets VALUES (?, ?, ?, ?, ?, ?)", [model, version, sha256, count, now, actor])
