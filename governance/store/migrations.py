"""Named schema migrations, applied in order and recorded in `schema_migrations`.

A migration is a function of a `Schema` (tables with their keys declared apart from their columns), named
by its position and purpose. Add new ones at the end of MIGRATIONS; never edit one that has shipped (stores
in the field have recorded its name).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable, Sequence

import duckdb

from governance.audit_chain import GENESIS_HASH


class Schema:
    """What a migration changes, said apart from the backend that makes it: a table's columns, its key and
    its unique columns are declared separately, so the embedded file enforces the keys and DuckLake, which
    has no PRIMARY KEY or UNIQUE, creates the columns alone (the service keeps uniqueness there; see
    governance.store.ducklake)."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, *, enforces_keys: bool) -> None:
        self.conn = conn
        self.enforces_keys = enforces_keys

    def create_table(self, name: str, columns: str, *, key: Sequence[str] = (), unique: Sequence[str] = (),
                     if_not_exists: bool = False) -> None:
        parts = [columns.strip()]
        if self.enforces_keys:
            parts += [f"PRIMARY KEY ({', '.join(key)})"] if key else []
            parts += [f"UNIQUE ({column})" for column in unique]
        self.conn.execute(f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{name} ({', '.join(parts)})")

    def add_column(self, table: str, column: str, *, default: str | None = None) -> None:
        """`column` is "name TYPE". With a default, rows already there get it; DuckLake refuses defaults on
        ALTER, so there existing rows are set to it and new ones are NULL (readers coalesce to it)."""
        if default is None:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        elif self.enforces_keys:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} DEFAULT {default}")
        else:
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
            self.conn.execute(f"UPDATE {table} SET {column.split()[0]} = {default}")

    def execute(self, sql: str, parameters: list[Any] | None = None) -> None:
        """A data statement (moving or filling rows), the same on every backend."""
        self.conn.execute(sql, parameters)


Migration = Callable[[Schema], None]


def m001_users_registry_artifacts(schema: Schema) -> None:
    schema.create_table("users", """
            name          VARCHAR,
            role          VARCHAR NOT NULL,
            password_hash VARCHAR,
            created_at    TIMESTAMP NOT NULL,
            created_by    VARCHAR""", key=("name",))
    schema.create_table("artifacts", """
            sha256        VARCHAR,
            size_bytes    BIGINT NOT NULL,
            original_name VARCHAR,
            created_at    TIMESTAMP NOT NULL""", key=("sha256",))
    schema.create_table("datasets", """
            sha256        VARCHAR,
            format        VARCHAR NOT NULL,
            row_count     BIGINT NOT NULL,
            schema_json   VARCHAR NOT NULL,
            original_name VARCHAR,
            created_at    TIMESTAMP NOT NULL""", key=("sha256",))
    schema.create_table("models", """
            name        VARCHAR,
            owner       VARCHAR,
            description VARCHAR,
            risk_tier   VARCHAR NOT NULL,
            created_at  TIMESTAMP NOT NULL,
            created_by  VARCHAR NOT NULL""", key=("name",))
    schema.create_table("versions", """
            model                VARCHAR NOT NULL,
            version              VARCHAR NOT NULL,
            artifact_sha256      VARCHAR NOT NULL,
            training_data_sha256 VARCHAR,
            parent_version       VARCHAR,
            status               VARCHAR NOT NULL,
            created_at           TIMESTAMP NOT NULL,
            created_by           VARCHAR NOT NULL""", key=("model", "version"))


def m002_prediction_sets(schema: Schema) -> None:
    schema.create_table("prediction_sets", """
            id             VARCHAR,
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
            created_by     VARCHAR NOT NULL""", key=("id",))


def m003_audit_events(schema: Schema) -> None:
    # UNIQUE(prev_hash): one successor per event, even when two transactions append at once.
    schema.create_table("audit_events", """
            seq       BIGINT,
            ts        VARCHAR NOT NULL,
            actor     VARCHAR,
            action    VARCHAR NOT NULL,
            entity    VARCHAR NOT NULL,
            payload   VARCHAR NOT NULL,
            prev_hash VARCHAR NOT NULL,
            hash      VARCHAR NOT NULL""", key=("seq",), unique=("prev_hash", "hash"))


def m004_evaluations(schema: Schema) -> None:
    # An evaluation is immutable: re-evaluating adds a new one, it never replaces records.
    schema.create_table("evaluations", """
            id                VARCHAR,
            model             VARCHAR NOT NULL,
            version           VARCHAR NOT NULL,
            prediction_set_id VARCHAR NOT NULL,
            reference_set_id  VARCHAR,
            engine            VARCHAR NOT NULL,
            params_json       VARCHAR NOT NULL,
            records_sha256    VARCHAR NOT NULL,
            record_count      INTEGER NOT NULL,
            created_at        TIMESTAMP NOT NULL,
            created_by        VARCHAR NOT NULL""", key=("id",))
    schema.create_table("metric_records", """
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
            detail_json   VARCHAR NOT NULL""", key=("evaluation_id", "position"))


def m005_gates_reviews_jobs(schema: Schema) -> None:
    schema.create_table("aliases", """
            model   VARCHAR NOT NULL,
            alias   VARCHAR NOT NULL,
            version VARCHAR NOT NULL,
            set_at  TIMESTAMP NOT NULL,
            set_by  VARCHAR NOT NULL""", key=("model", "alias"))
    schema.create_table("gate_decisions", """
            id             VARCHAR,
            model          VARCHAR NOT NULL,
            version        VARCHAR NOT NULL,
            evaluation_id  VARCHAR NOT NULL,
            policy_name    VARCHAR NOT NULL,
            policy_version VARCHAR NOT NULL,
            policy_sha256  VARCHAR NOT NULL,
            metrics_sha256 VARCHAR NOT NULL,
            verdict        VARCHAR NOT NULL,
            decision_json  VARCHAR NOT NULL,
            created_at     TIMESTAMP NOT NULL,
            created_by     VARCHAR NOT NULL""", key=("id",))
    # dedupe_key: gating again on the same evidence must not queue the same work twice.
    schema.create_table("review_items", """
            id                 VARCHAR,
            dedupe_key         VARCHAR NOT NULL,
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
            created_by         VARCHAR NOT NULL""", key=("id",), unique=("dedupe_key",))
    schema.create_table("jobs", """
            id                 VARCHAR,
            dedupe_key         VARCHAR NOT NULL,
            model              VARCHAR NOT NULL,
            version            VARCHAR NOT NULL,
            kind               VARCHAR NOT NULL,
            status             VARCHAR NOT NULL,
            strategies_json    VARCHAR NOT NULL,
            failing_rules_json VARCHAR NOT NULL,
            depends_on_json    VARCHAR NOT NULL,
            gate_decision_id   VARCHAR NOT NULL,
            attempts           INTEGER NOT NULL,
            created_at         TIMESTAMP NOT NULL,
            updated_at         TIMESTAMP NOT NULL""", key=("id",), unique=("dedupe_key",))


def m006_reviews_signoffs_releases(schema: Schema) -> None:
    schema.add_column("review_items", "assignee VARCHAR")
    schema.add_column("review_items", "claim_expires_at TIMESTAMP")
    schema.add_column("review_items", "due_at TIMESTAMP")
    schema.add_column("review_items", "gold_json VARCHAR")  # a gold item's known answer
    schema.add_column("review_items", "resolved_at TIMESTAMP")
    # One judgment per reviewer per item: the key refuses a second, even from a concurrent process.
    schema.create_table("judgments", """
            item_id         VARCHAR NOT NULL,
            reviewer        VARCHAR NOT NULL,
            verdict         VARCHAR NOT NULL,
            corrected_label INTEGER,
            comment         VARCHAR NOT NULL,
            judged_at       TIMESTAMP NOT NULL""", key=("item_id", "reviewer"))
    # Every sign-off decision is kept; a reviewer's latest revision is their current decision.
    schema.create_table("signoffs", """
            model      VARCHAR NOT NULL,
            version    VARCHAR NOT NULL,
            reviewer   VARCHAR NOT NULL,
            revision   INTEGER NOT NULL,
            decision   VARCHAR NOT NULL,
            comment    VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL""", key=("model", "version", "reviewer", "revision"))
    schema.create_table("alias_history", """
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
            moved_at         TIMESTAMP NOT NULL""", key=("model", "seq"))
    schema.create_table("feedback_datasets", """
            model          VARCHAR NOT NULL,
            version        INTEGER NOT NULL,
            dataset_sha256 VARCHAR NOT NULL,
            corrections    INTEGER NOT NULL,
            created_at     TIMESTAMP NOT NULL,
            created_by     VARCHAR NOT NULL""", key=("model", "version"))


def m007_training_jobs(schema: Schema) -> None:
    schema.add_column("versions", "lineage_json VARCHAR")  # job, gate, rules, feedback, config
    schema.add_column("jobs", "lease_owner VARCHAR")
    schema.add_column("jobs", "lease_expires_at TIMESTAMP")
    schema.add_column("jobs", "progress_json VARCHAR")
    schema.add_column("jobs", "cancel_requested BOOLEAN", default="false")
    schema.add_column("jobs", "error VARCHAR")
    schema.add_column("jobs", "result_version VARCHAR")
    schema.add_column("gate_decisions", "policy_text VARCHAR")  # so a retrained version is gated alike


def m008_audit_head(schema: Schema) -> None:
    # One row naming the chain's head. Every append updates it, so two concurrent appends collide at
    # commit on either store (DuckLake has no UNIQUE(prev_hash) to do it) and one is run again.
    schema.create_table("audit_head", "id INTEGER NOT NULL, seq BIGINT NOT NULL, hash VARCHAR NOT NULL")
    schema.execute("INSERT INTO audit_head SELECT 1, coalesce(max(seq), 0), coalesce(arg_max(hash, seq), ?) "
                 "FROM audit_events", [GENESIS_HASH])


def m009_trust_controls(schema: Schema) -> None:
    # Credentials: sessions (`govern login`, dashboard sign-ins) and admins' API tokens, stored hashed.
    schema.create_table("auth_tokens", """
            id            VARCHAR,
            user_name     VARCHAR NOT NULL,
            kind          VARCHAR NOT NULL,
            name          VARCHAR,
            secret_sha256 VARCHAR NOT NULL,
            created_at    TIMESTAMP NOT NULL,
            created_by    VARCHAR NOT NULL,
            expires_at    TIMESTAMP NOT NULL,
            revoked_at    TIMESTAMP""", key=("id",))
    # Failed sign-ins per user and client, for the back-off; the audit log keeps them too.
    schema.create_table("signin_failures", """
            user_name VARCHAR NOT NULL,
            client    VARCHAR NOT NULL,
            failed_at TIMESTAMP NOT NULL""")
    schema.add_column("users", "disabled_at TIMESTAMP")
    # An admin may raise a model's approval floor above its risk tier's; never lower it.
    schema.add_column("models", "min_approvals INTEGER")
    # A sign-off binds to the evidence it saw: the artifact and the evaluation its gate judged.
    schema.add_column("signoffs", "artifact_sha256 VARCHAR")
    schema.add_column("signoffs", "evaluation_id VARCHAR")
    schema.add_column("signoffs", "gate_id VARCHAR")
    schema.add_column("signoffs", "acknowledged_blocked BOOLEAN")
    # Policy packs are governed objects: registered (versioned, with their exact text) and assigned.
    schema.create_table("policy_packs", """
            name          VARCHAR NOT NULL,
            version       INTEGER NOT NULL,
            sha256        VARCHAR NOT NULL,
            text          VARCHAR NOT NULL,
            registered_at TIMESTAMP NOT NULL,
            registered_by VARCHAR NOT NULL""", key=("name", "version"))
    schema.create_table("policy_assignments", """
            scope          VARCHAR NOT NULL,
            target         VARCHAR NOT NULL,
            policy_name    VARCHAR NOT NULL,
            policy_version INTEGER,
            assigned_at    TIMESTAMP NOT NULL,
            assigned_by    VARCHAR NOT NULL""", key=("scope", "target"))


def m010_retraining_search(schema: Schema) -> None:
    # The candidates a retraining job's search tried, with their validation metrics and the one chosen.
    schema.add_column("jobs", "search_json VARCHAR")


def m011_intersections(schema: Schema) -> None:
    # Intersections of sensitive columns judged like columns (e.g. [["sex", "race"]]); null for none.
    schema.add_column("prediction_sets", "intersections_json VARCHAR")


def m012_production_labels(schema: Schema) -> None:
    # A production batch may arrive without labels (label_column null): its outcomes arrive later by row id,
    # each arrival a Parquet file of (row id, label) for rows not labelled before, numbered per batch (the
    # key makes two arrivals racing for the same number collide instead of both landing).
    schema.execute("ALTER TABLE prediction_sets ALTER COLUMN label_column DROP NOT NULL")
    schema.create_table("label_arrivals", """
            id                VARCHAR NOT NULL,
            prediction_set_id VARCHAR NOT NULL,
            seq               INTEGER NOT NULL,
            source_name       VARCHAR NOT NULL,
            source_sha256     VARCHAR NOT NULL,
            dataset_sha256    VARCHAR NOT NULL,
            file_rows         BIGINT NOT NULL,
            new_labels        BIGINT NOT NULL,
            repeated          BIGINT NOT NULL,
            labelled_total    BIGINT NOT NULL,
            evaluation_id     VARCHAR,
            created_at        TIMESTAMP NOT NULL,
            created_by        VARCHAR NOT NULL""", key=("prediction_set_id", "seq"), unique=("id",))


def m013_model_inventory(schema: Schema) -> None:
    # The model inventory an auditor's documents state: what the model is for and what it must not be used for.
    schema.add_column("models", "intended_use VARCHAR")
    schema.add_column("models", "limitations VARCHAR")


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
    m012_production_labels,
    m013_model_inventory,
)


def applied_migrations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The names of the migrations this store recorded (none before its first)."""
    recorded = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND "
                            "schema_name = current_schema() AND table_name = 'schema_migrations'").fetchone()
    if not recorded or not recorded[0]:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()]


def apply_pending(conn: duckdb.DuckDBPyConnection, migrations: Sequence[Migration] = MIGRATIONS, *,
                  enforces_keys: bool = True) -> list[str]:
    """Apply the migrations not yet recorded, in order; return the names applied now. `enforces_keys`: the
    backend has PRIMARY KEY and UNIQUE (the embedded file does, DuckLake does not)."""
    schema = Schema(conn, enforces_keys=enforces_keys)
    done = set(applied_migrations(conn))
    if not done:
        schema.create_table("schema_migrations", "name VARCHAR, applied_at TIMESTAMP NOT NULL", key=("name",),
                            if_not_exists=True)
    applied = []
    for migration in migrations:
        if migration.__name__ in done:
            continue
        migration(schema)
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, ?)",
            [migration.__name__, datetime.now(timezone.utc).replace(tzinfo=None)],
        )
        applied.append(migration.__name__)
    return applied
