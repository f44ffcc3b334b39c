"""The stores the suite runs on, the seeded users, and reading a store behind the service's back."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from governance.ingest import ColumnRoles
from governance.service import Service

# The stores every store test runs on (GOVERN_TEST_STORES=file runs the file alone, e.g. without PostgreSQL).
STORES = [kind for kind in os.environ.get("GOVERN_TEST_STORES", "file,ducklake").split(",") if kind]
# One user per role; the admin bootstraps the store.
USERS = {"ada": "admin", "vic": "viewer", "rey": "reviewer", "eng": "engineer", "aud": "auditor"}
# The roles of the ACS employment files (tests/support/datasets.acs) as the tests ingest them.
ACS_ROLES = ColumnRoles(label="employed", score="predicted_probability", sensitive=("SEX", "RAC1P"),
                        features=("AGEP", "SCHL", "MAR", "DIS"))

# Pins a test to the embedded file: for tests about the file itself (its lock, its WAL, its permissions).
file_only = pytest.mark.parametrize("store_kind", ["file"], indirect=True)
# Pins a test to DuckLake, whatever GOVERN_TEST_STORES says: tests of what only DuckLake must guarantee.
ducklake_only = pytest.mark.parametrize("store_kind", ["ducklake"], indirect=True)


@dataclass
class Seeded:
    """A store make_store built: its home and the artifact file its versions were registered with."""

    home: Path
    artifact: Path

    def as_(self, user: str) -> Service:
        return Service.open(home=self.home, actor=user, lock_timeout_s=30)

    def assign_policy(self, policy: Path | str, *, model: str = "credit") -> None:
        """As the admin: register a policy file (or take a shipped pack's name) and assign it to `model`, so
        binding gates run it."""
        admin = self.as_("ada")
        name = str(policy) if str(policy) in ("default", "strict") else admin.register_policy(file=Path(policy)).name
        admin.assign_policy(policy=name, model=model)


def run_sql(home: Path, unit: Callable):
    """Run `unit(connection)` in one transaction on the store of `home` (whichever kind it is): for
    tests that read or tamper with tables behind the service's back."""
    from governance.config import resolve_settings

    return resolve_settings(home=home).database().run(unit)


def snapshot(home: Path) -> dict:
    """Every row of every table plus the artifact files: equal snapshots mean an unchanged store."""
    def unit(conn) -> dict:
        tables = [row[0] for row in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_name").fetchall()]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}

    state = run_sql(home, unit)
    state["_artifacts"] = sorted(str(p.relative_to(home)) for p in (home / "artifacts" / "sha256").rglob("*")
                                 if p.is_file()) if (home / "artifacts" / "sha256").exists() else []
    return state
