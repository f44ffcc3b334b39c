"""SQL of registered policy packs (versioned, with their exact text) and their assignments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from governance.records import Record


@dataclass(frozen=True)
class PolicyPack(Record):
    name: str
    version: int
    sha256: str
    text: str
    registered_at: datetime
    registered_by: str


@dataclass(frozen=True)
class PolicyAssignment(Record):
    scope: str  # model | tier
    target: str
    policy_name: str
    policy_version: int | None  # None: a shipped pack
    assigned_at: datetime
    assigned_by: str


_PACK = "name, version, sha256, text, registered_at, registered_by"
_ASSIGNMENT = "scope, target, policy_name, policy_version, assigned_at, assigned_by"


def get_pack(conn: duckdb.DuckDBPyConnection, name: str, version: int | None = None) -> PolicyPack | None:
    """A registered pack by name, at `version` or its latest."""
    row = conn.execute(f"SELECT {_PACK} FROM policy_packs WHERE name = ? AND (? IS NULL OR version = ?) "
                       "ORDER BY version DESC LIMIT 1", [name, version, version]).fetchone()
    return PolicyPack(*row) if row else None


def list_packs(conn: duckdb.DuckDBPyConnection) -> list[PolicyPack]:
    return [PolicyPack(*row) for row in conn.execute(
        f"SELECT {_PACK} FROM policy_packs ORDER BY name, version").fetchall()]


def insert_pack(conn: duckdb.DuckDBPyConnection, pack: PolicyPack) -> None:
    conn.execute(f"INSERT INTO policy_packs ({_PACK}) VALUES (?, ?, ?, ?, ?, ?)",
                 [pack.name, pack.version, pack.sha256, pack.text, pack.registered_at, pack.registered_by])


def get_assignment(conn: duckdb.DuckDBPyConnection, scope: str, target: str) -> PolicyAssignment | None:
    row = conn.execute(f"SELECT {_ASSIGNMENT} FROM policy_assignments WHERE scope = ? AND target = ?",
                       [scope, target]).fetchone()
    return PolicyAssignment(*row) if row else None


def list_assignments(conn: duckdb.DuckDBPyConnection) -> list[PolicyAssignment]:
    return [PolicyAssignment(*row) for row in conn.execute(
        f"SELECT {_ASSIGNMENT} FROM policy_assignments ORDER BY scope, target").fetchall()]


def set_assignment(conn: duckdb.DuckDBPyConnection, assignment: PolicyAssignment) -> None:
    # Portable upsert (DuckLake has no ON CONFLICT); the unit's audit append serialises concurrent ones.
    conn.execute("DELETE FROM policy_assignments WHERE scope = ? AND target = ?",
                 [assignment.scope, assignment.target])
    conn.execute(f"INSERT INTO policy_assignments ({_ASSIGNMENT}) VALUES (?, ?, ?, ?, ?, ?)",
                 [assignment.scope, assignment.target, assignment.policy_name, assignment.policy_version,
                  assignment.assigned_at, assignment.assigned_by])
