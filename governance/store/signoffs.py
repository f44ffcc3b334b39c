"""SQL of reviewers' sign-offs on versions (each a new revision; the latest one stands)."""

from __future__ import annotations

from typing import Any

import duckdb

from governance.records import SignOff, SignOffDecision, stored
from governance.store.rows import Row, one_int

_SIGNOFF = ("model, version, reviewer, revision, decision, comment, created_at, artifact_sha256, evaluation_id, "
            "gate_id, coalesce(acknowledged_blocked, false)")
_SIGNOFF_WRITE = _SIGNOFF.replace("coalesce(acknowledged_blocked, false)", "acknowledged_blocked")


def _signoff(row: Row) -> SignOff:
    model, version, reviewer, revision, decision, *rest = row
    return SignOff(model, version, reviewer, revision, stored(SignOffDecision, decision), *rest)


def next_signoff_revision(conn: duckdb.DuckDBPyConnection, model: str, version: str, reviewer: str) -> int:
    return one_int(conn, "SELECT coalesce(max(revision), 0) + 1 FROM signoffs WHERE model = ? AND version = ? AND "
                   "reviewer = ?", [model, version, reviewer])


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
    return [_signoff(row) for row in rows]


def rejections_of_artifact(conn: duckdb.DuckDBPyConnection, artifact_sha256: str) -> list[SignOff]:
    """Standing rejections (each reviewer's latest decision on a version is `reject`) of any version, of
    any model, whose artifact is `artifact_sha256`: a rejection follows the bytes, not the version name."""
    rows = conn.execute(
        f"SELECT {_SIGNOFF} FROM (SELECT s.* FROM signoffs s JOIN versions v ON v.model = s.model AND "
        "v.version = s.version WHERE v.artifact_sha256 = ? "
        "QUALIFY s.revision = max(s.revision) OVER (PARTITION BY s.model, s.version, s.reviewer)) "
        "WHERE decision = 'reject' ORDER BY model, version, reviewer", [artifact_sha256]).fetchall()
    return [_signoff(row) for row in rows]


def all_signoffs(conn: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """Every sign-off revision as (model, version, reviewer, revision, decision, artifact_sha256, evaluation_id,
    gate_id): what the log must have logged, as its `signoff.*` event records it."""
    return [(m, v, r, int(n), str(d), a, e, g) for m, v, r, n, d, a, e, g in conn.execute(
        "SELECT model, version, reviewer, revision, decision, artifact_sha256, evaluation_id, gate_id FROM signoffs "
        "ORDER BY model, version, reviewer, revision").fetchall()]
