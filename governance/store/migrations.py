"""Named schema migrations, applied in order and recorded in `schema_migrations`.

A migration is a function of a connection, named by its position and purpose. Add new ones at the
end of MIGRATIONS; never edit one that has shipped (stores in the field have recorded its name).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable, Sequence

import duckdb

from governance.audit_chain import GENESIS_HASH
from governance.store.ducklake import is_ducklake, strip_constraints

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def m001_users_registry_artifacts(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("""
        CREATE TABLE users (
            name          VARCHAR PRIMARY KEY,
            role          VARCHAR NOT NULL,
            password_hash VARCHAR,
            created_at    TIMESTAMP NOT NULL,
            created_by    VARCHAR
        )""")
    conn.execute("""
        CREATE TABLE artifacts (
            sha256        VARCHAR PRIMARY KEY,
            size_bytes    BIGINT NOT NULL,
            original_name VARCHAR,
            created_at    TIMESTAMP NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE datasets (
            sha256        VARCHAR PRIMARY KEY,
            format        VARCHAR NOT NULL,
            row_count     BIGINT NOT NULL,
            schema_json   VARCHAR NOT NULL,
            original_name VARCHAR,
            created_at    TIMESTAMP NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE models (
            name        VARCHAR PRIMARY KEY,
            owner       VARCHAR,
            description VARCHAR,
            risk_tier   VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL,
            created_by  VARCHAR NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE versions (
            model                VARCHAR NOT NULL,
            version              VARCHAR NOT NULL,
            artifact_sha256      VARCHAR NOT NULL,
            training_data_sha256 VARCHAR,
            parent_version       VARCHAR,
            status               VARCHAR NOT NULL,
            created_at           TIMESTAMP NOT NULL,
            created_by           VARCHAR NOT NULL,
            PRIMARY KEY (model, version)
        )""")


def m002_prediction_sets(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("""
        CREATE TABLE prediction_sets (
            id             VARCHAR PRIMARY KEY,
            model          VARCHAR NOT NULL,
            version        VARCHAR NOT NULL,
            split          VARCHAR NOT NULL,
            batch_time     TIMESTAMP,
            dataset_sha256 VARCHAR NOT NULL,
            source_name    VARCHAR NOT NULL,
            source_sha256  VARCHAR NOT NULL,
            row_count      BIGINT NOT NULL,
            id_column      VARCHAR,
            label_column   VARCHAR NOT NULL,
            score_column   VARCHAR NOT NULL,
            sensitive_json VARCHAR NOT NULL,
            features_json  VARCHAR NOT NULL,
            created_at     TIMESTAMP NOT NULL,
            created_by     VARCHAR NOT NULL
        )""")


def m003_audit_events(conn: duckdb.DuckDBPyConnection) -> None:
    # UNIQUE(prev_hash): one successor per event, even when two transactions append at once.
    conn.execute("""
        CREATE TABLE audit_events (
            seq       BIGINT PRIMARY KEY,
            ts        VARCHAR NOT NULL,
            actor     VARCHAR,
            action    VARCHAR NOT NULL,
            entity    VARCHAR NOT NULL,
            payload   VARCHAR NOT NULL,
            prev_hash VARCHAR NOT NULL UNIQUE,
            hash      VARCHAR NOT NULL UNIQUE
        )""")


def m004_evaluations(conn: duckdb.DuckDBPyConnection) -> None:
    # An evaluation is immutable: re-evaluating adds a new one, it never replaces records.
    conn.execute("""
        CREATE TABLE evaluations (
            id                VARCHAR PRIMARY KEY,
            model             VARCHAR NOT NULL,
            version           VARCHAR NOT NULL,
            prediction_set_id VARCHAR NOT NULL,
            reference_set_id  VARCHAR,
            engine            VARCHAR NOT NULL,
            params_json       VARCHAR NOT NULL,
            records_sha256    VARCHAR NOT NULL,
            record_count      INTEGER NOT NULL,
            created_at        TIMESTAMP NOT NULL,
            created_by        VARCHAR NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE metric_records (
            evaluation_id VARCHAR NOT NULL,
            position      INTEGER NOT NULL,
            family        VARCHAR NOT NULL,
            metric        VARCHAR NOT NULL,
            feature       VARCHAR,
            group_value   VARCHAR,
            value         DOUBLE,
            n             BIGINT NOT NULL,
            ci_low        DOUBLE,
            ci_high       DOUBLE,
            detail_json   VARCHAR NOT NULL,
            PRIMARY KEY (evaluation_id, position)
        )""")


def m005_gates_reviews_jobs(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("""
        CREATE TABLE aliases (
            model   VARCHAR NOT NULL,
            alias   VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            set_at  TIMESTAMP NOT NULL,
            set_by  VARCHAR NOT NULL,
            PRIMARY KEY (model, alias)
        )""")
    conn.execute("""
        CREATE TABLE gate_decisions (
            id              VARCHAR PRIMARY KEY,
            model           VARCHAR NOT NULL,
            version         VARCHAR NOT NULL,
            evaluation_id   VARCHAR NOT NULL,
            policy_name     VARCHAR NOT NULL,
            policy_version  VARCHAR NOT NULL,
            policy_sha256   VARCHAR NOT NULL,
            metrics_sha256  VARCHAR NOT NULL,
            verdict         VARCHAR NOT NULL,
            decision_json   VARCHAR NOT NULL,
            created_at      TIMESTAMP NOT NULL,
            created_by      VARCHAR NOT NULL
        )""")
    # dedupe_key: gating again on the same evidence must not queue the same work twice.
    conn.execute("""
        CREATE TABLE review_items (
            id                 VARCHAR PRIMARY KEY,
            dedupe_key         VARCHAR NOT NULL UNIQUE,
            model              VARCHAR NOT NULL,
            version            VARCHAR NOT NULL,
            kind               VARCHAR NOT NULL,
            rule_id            VARCHAR,
            gate_decision_id   VARCHAR,
            priority           VARCHAR NOT NULL,
            status             VARCHAR NOT NULL,
            judgments_required INTEGER NOT NULL,
            evidence_json      VARCHAR NOT NULL,
            created_at         TIMESTAMP NOT NULL,
            created_by         VARCHAR NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE jobs (
            id                VARCHAR PRIMARY KEY,
            dedupe_key        VARCHAR NOT NULL UNIQUE,
            model             VARCHAR NOT NULL,
            version           VARCHAR NOT NULL,
            kind              VARCHAR NOT NULL,
            status            VARCHAR NOT NULL,
            strategies_json   VARCHAR NOT NULL,
            failing_rules_json VARCHAR NOT NULL,
            depends_on_json   VARCHAR NOT NULL,
            gate_decision_id  VARCHAR NOT NULL,
            attempts          INTEGER NOT NULL,
            created_at        TIMESTAMP NOT NULL,
            updated_at        TIMESTAMP NOT NULL
        )""")


def m006_reviews_signoffs_releases(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("ALTER TABLE review_items ADD COLUMN assignee VARCHAR")
    conn.execute("ALTER TABLE review_items ADD COLUMN claim_expires_at TIMESTAMP")
    conn.execute("ALTER TABLE review_items ADD COLUMN due_at TIMESTAMP")
    conn.execute("ALTER TABLE review_items ADD COLUMN gold_json VARCHAR")  # a gold item's known answer
    conn.execute("ALTER TABLE review_items ADD COLUMN resolved_at TIMESTAMP")
    # One judgment per reviewer per item: the key refuses a second, even from a concurrent process.
    conn.execute("""
        CREATE TABLE judgments (
            item_id         VARCHAR NOT NULL,
            reviewer        VARCHAR NOT NULL,
            verdict         VARCHAR NOT NULL,
            corrected_label INTEGER,
            comment         VARCHAR NOT NULL,
            judged_at       TIMESTAMP NOT NULL,
            PRIMARY KEY (item_id, reviewer)
        )""")
    # Every sign-off decision is kept; a reviewer's latest revision is their current decision.
    conn.execute("""
        CREATE TABLE signoffs (
            model      VARCHAR NOT NULL,
            version    VARCHAR NOT NULL,
            reviewer   VARCHAR NOT NULL,
            revision   INTEGER NOT NULL,
            decision   VARCHAR NOT NULL,
            comment    VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, version, reviewer, revision)
        )""")
    conn.execute("""
        CREATE TABLE alias_history (
            model            VARCHAR NOT NULL,
            seq              INTEGER NOT NULL,
            alias            VARCHAR NOT NULL,
            version          VARCHAR NOT NULL,
            previous_version VARCHAR,
            action           VARCHAR NOT NULL,
            gate_id          VARCHAR,
            override_reason  VARCHAR,
            override_expires TIMESTAMP,
            actor            VARCHAR NOT NULL,
            moved_at         TIMESTAMP NOT NULL,
            PRIMARY KEY (model, seq)
        )""")
    conn.execute("""
        CREATE TABLE feedback_datasets (
            model          VARCHAR NOT NULL,
            version        INTEGER NOT NULL,
            dataset_sha256 VARCHAR NOT NULL,
            corrections    INTEGER NOT NULL,
            created_at     TIMESTAMP NOT NULL,
            created_by     VARCHAR NOT NULL,
            PRIMARY KEY (model, version)
        )""")


def m007_training_jobs(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("ALTER TABLE versions ADD COLUMN lineage_json VARCHAR")  # job, gate, rules, feedback, config
    conn.execute("ALTER TABLE jobs ADD COLUMN lease_owner VARCHAR")
    conn.execute("ALTER TABLE jobs ADD COLUMN lease_expires_at TIMESTAMP")
    conn.execute("ALTER TABLE jobs ADD COLUMN progress_json VARCHAR")
    conn.execute("ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN DEFAULT false")
    conn.execute("ALTER TABLE jobs ADD COLUMN error VARCHAR")
    conn.execute("ALTER TABLE jobs ADD COLUMN result_version VARCHAR")
    conn.execute("ALTER TABLE gate_decisions ADD COLUMN policy_text VARCHAR")  # so a retrained version is gated alike


def m008_audit_head(conn: duckdb.DuckDBPyConnection) -> None:
    # One row naming the chain's head. Every append updates it, so two concurrent appends collide at
    # commit on either store (DuckLake has no UNIQUE(prev_hash) to do it) and one is run again.
    conn.execute("CREATE TABLE audit_head (id INTEGER NOT NULL, seq BIGINT NOT NULL, hash VARCHAR NOT NULL)")
    conn.execute("INSERT INTO audit_head SELECT 1, coalesce(max(seq), 0), coalesce(arg_max(hash, seq), ?) "
                 "FROM audit_events", [GENESIS_HASH])


def m009_trust_controls(conn: duckdb.DuckDBPyConnection) -> None:
    # Credentials: sessions (`govern login`, dashboard sign-ins) and admins' API tokens, stored hashed.
    conn.execute("""
        CREATE TABLE auth_tokens (
            id            VARCHAR PRIMARY KEY,
            user_name     VARCHAR NOT NULL,
            kind          VARCHAR NOT NULL,
            name          VARCHAR,
            secret_sha256 VARCHAR NOT NULL,
            created_at    TIMESTAMP NOT NULL,
            created_by    VARCHAR NOT NULL,
            expires_at    TIMESTAMP NOT NULL,
            revoked_at    TIMESTAMP
        )""")
    # Failed sign-ins per user and client, for the back-off; the audit log keeps them too.
    conn.execute("""
        CREATE TABLE signin_failures (
            user_name VARCHAR NOT NULL,
            client    VARCHAR NOT NULL,
            failed_at TIMESTAMP NOT NULL
        )""")
    conn.execute("ALTER TABLE users ADD COLUMN disabled_at TIMESTAMP")
    # An admin may raise a model's approval floor above its risk tier's; never lower it.
    conn.execute("ALTER TABLE models ADD COLUMN min_approvals INTEGER")
    # A sign-off binds to the evidence it saw: the artifact and the evaluation its gate judged.
    conn.execute("ALTER TABLE signoffs ADD COLUMN artifact_sha256 VARCHAR")
    conn.execute("ALTER TABLE signoffs ADD COLUMN evaluation_id VARCHAR")
    conn.execute("ALTER TABLE signoffs ADD COLUMN gate_id VARCHAR")
    conn.execute("ALTER TABLE signoffs ADD COLUMN acknowledged_blocked BOOLEAN")
    # Policy packs are governed objects: registered (versioned, with their exact text) and assigned.
    conn.execute("""
        CREATE TABLE policy_packs (
            name          VARCHAR NOT NULL,
            version       INTEGER NOT NULL,
            sha256        VARCHAR NOT NULL,
            text          VARCHAR NOT NULL,
            registered_at TIMESTAMP NOT NULL,
            registered_by VARCHAR NOT NULL,
            PRIMARY KEY (name, version)
        )""")
    conn.execute("""
        CREATE TABLE policy_assignments (
            scope          VARCHAR NOT NULL,
            target         VARCHAR NOT NULL,
            policy_name    VARCHAR NOT NULL,
            policy_version INTEGER,
            assigned_at    TIMESTAMP NOT NULL,
            assigned_by    VARCHAR NOT NULL,
            PRIMARY KEY (scope, target)
        )""")


def m010_retraining_search(conn: duckdb.DuckDBPyConnection) -> None:
    # The candidates a retraining job's search tried, with their validation metrics and the one chosen.
    conn.execute("ALTER TABLE jobs ADD COLUMN search_json VARCHAR")


def m011_intersections(conn: duckdb.DuckDBPyConnection) -> None:
    # Intersections of sensitive columns judged like columns (e.g. [["sex", "race"]]); null for none.
    conn.execute("ALTER TABLE prediction_sets ADD COLUMN intersections_json VARCHAR")


MIGRATIONS: tuple[Migration, ...] = (
    m001_users_registry_artifacts,
    m002_prediction_sets,
    m003_audit_events,
    m004_evaluations,
    m005_gates_reviews_jobs,
    m006_reviews_signoffs_releases,
    m007_training_jobs,
    m008_audit_head,
    m009_trust_controls,
    m010_retraining_search,
    m011_intersections,
)


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS schema_migrations (
            name       VARCHAR PRIMARY KEY,
            applied_at TIMESTAMP NOT NULL
        )""")
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]


_ADD_WITH_DEFAULT = re.compile(r"\s*ALTER TABLE (\w+) ADD COLUMN (\w+) (\w+) DEFAULT (\S+)\s*$", re.IGNORECASE)


class _PortableDDL:
    """The connection, but CREATE TABLE without PRIMARY KEY / UNIQUE on DuckLake, which has neither (the
    service keeps uniqueness there; see governance.store.ducklake)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._conn = conn
        self._lake = is_ducklake(conn)

    def execute(self, sql: str, *args):
        if self._lake and sql.lstrip().upper().startswith("CREATE TABLE"):
            sql = strip_constraints(sql)
        added = _ADD_WITH_DEFAULT.match(sql) if self._lake else None
        if added:  # DuckLake refuses these defaults: existing rows get the value, new ones NULL (read as it)
            table, column, kind, default = added.groups()
            self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            return self._conn.execute(f"UPDATE {table} SET {column} = {default}")
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._conn, name)


def apply_pending(conn: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied now."""
    conn = _PortableDDL(conn)
    done = set(applied_migrations(conn))
    applied = []
    for migration in migrations:
        if migration.__name__ in done:
            continue
        migration(conn)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?)",
            [migration.__name__, datetime.now(timezone.utc).replace(tzinfo=None)],
        )
        applied.append(migration.__name__)
    return applied
