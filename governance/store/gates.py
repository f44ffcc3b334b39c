"""SQL of gate decisions, with the policy text each was judged under."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from governance.records import GateRecord, GateVerdict, stored
from governance.store.rows import Row
from policies.decision import GateDecision

_GATE = ("id, model, version, evaluation_id, policy_name, policy_version, policy_sha256, metrics_sha256, verdict, "
         "decision_json, created_at, created_by")
_SELECT_GATES = f"SELECT {_GATE} FROM gate_decisions"


def insert_gate(conn: duckdb.DuckDBPyConnection, gate: GateRecord) -> None:
    conn.execute(
        f"INSERT INTO gate_decisions ({_GATE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [gate.id, gate.model, gate.version, gate.evaluation_id, gate.policy_name, gate.policy_version,
         gate.policy_sha256, gate.metrics_sha256, gate.verdict, json.dumps(gate.decision.to_dict(), sort_keys=True),
         gate.created_at, gate.created_by],
    )


def newest_gate_time(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> datetime | None:
    """When the version's newest gate decision was recorded (None without one)."""
    row = conn.execute("SELECT max(created_at) FROM gate_decisions WHERE model = ? AND version = ?",
                       [model, version]).fetchone()
    return row[0] if row else None


def latest_gate(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> GateRecord | None:
    row = conn.execute(_SELECT_GATES + " WHERE model = ? AND version = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                       [model, version]).fetchone()
    return _gate(row) if row else None


def latest_gates(conn: duckdb.DuckDBPyConnection, model: str) -> list[GateRecord]:
    """Each version's latest gate decision, the newest decision last."""
    rows = conn.execute(_SELECT_GATES + " WHERE model = ? QUALIFY row_number() OVER (PARTITION BY version "
                        "ORDER BY created_at DESC, id DESC) = 1 ORDER BY created_at, id", [model]).fetchall()
    return [_gate(row) for row in rows]


def get_gate(conn: duckdb.DuckDBPyConnection, gate_id: str) -> GateRecord | None:
    row = conn.execute(_SELECT_GATES + " WHERE id = ?", [gate_id]).fetchone()
    return _gate(row) if row else None


def _gate(row: Row) -> GateRecord:
    values = list(row)
    values[8] = stored(GateVerdict, values[8])
    values[9] = GateDecision.from_dict(json.loads(values[9]))
    return GateRecord(*values)


def set_policy_text(conn: duckdb.DuckDBPyConnection, gate_id: str, text: str) -> None:
    conn.execute("UPDATE gate_decisions SET policy_text = ? WHERE id = ?", [text, gate_id])


def policy_text(conn: duckdb.DuckDBPyConnection, gate_id: str) -> str | None:
    row = conn.execute("SELECT policy_text FROM gate_decisions WHERE id = ?", [gate_id]).fetchone()
    return row[0] if row else None
