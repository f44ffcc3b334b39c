"""SQL of models, versions, artifacts, datasets and prediction sets."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from governance.records import Dataset, Model, PredictionSet, Version
from governance.store.rows import Row, one_int

_MODEL = "name, owner, description, risk_tier, created_at, created_by, min_approvals, intended_use, limitations"
_MODEL_WRITE = "name, owner, description, risk_tier, created_at, created_by, intended_use, limitations"
_VERSION = (
    "model, version, artifact_sha256, training_data_sha256, parent_version, status, created_at, created_by, "
    "lineage_json"
)
_PREDICTION_SET = (
    "id, model, version, split, batch_time, dataset_sha256, source_name, source_sha256, row_count, "
    "id_column, label_column, score_column, sensitive_json, features_json, created_at, created_by, intersections_json"
)


def get_model(conn: duckdb.DuckDBPyConnection, name: str) -> Model | None:
    row = conn.execute(f"SELECT {_MODEL} FROM models WHERE name = ?", [name]).fetchone()
    return Model(*row) if row else None


def list_models(conn: duckdb.DuckDBPyConnection) -> list[Model]:
    return [Model(*row) for row in conn.execute(f"SELECT {_MODEL} FROM models ORDER BY name").fetchall()]


def insert_model(conn: duckdb.DuckDBPyConnection, model: Model) -> None:
    conn.execute(
        f"INSERT INTO models ({_MODEL_WRITE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [model.name, model.owner, model.description, model.risk_tier, model.created_at, model.created_by,
         model.intended_use, model.limitations],
    )


def update_model(conn: duckdb.DuckDBPyConnection, name: str, *, risk_tier: str, min_approvals: int | None,
                 description: str | None, intended_use: str | None = None, limitations: str | None = None) -> None:
    conn.execute("UPDATE models SET risk_tier = ?, min_approvals = ?, description = ?, intended_use = ?, "
                 "limitations = ? WHERE name = ?",
                 [risk_tier, min_approvals, description, intended_use, limitations, name])


def versions_with_artifact(conn: duckdb.DuckDBPyConnection, artifact_sha256: str) -> list[tuple[str, str]]:
    return [tuple(row) for row in conn.execute(
        "SELECT model, version FROM versions WHERE artifact_sha256 = ? ORDER BY model, version",
        [artifact_sha256]).fetchall()]


def get_version(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Version | None:
    row = conn.execute(
        f"SELECT {_VERSION} FROM versions WHERE model = ? AND version = ?", [model, version]
    ).fetchone()
    return _version(row) if row else None


def versions_created_by(conn: duckdb.DuckDBPyConnection, user: str) -> list[Version]:
    return [_version(row) for row in conn.execute(f"SELECT {_VERSION} FROM versions WHERE created_by = ?",
                                                  [user]).fetchall()]


def _version(row: Row) -> Version:
    values = list(row)
    values[-1] = json.loads(values[-1]) if values[-1] else None
    return Version(*values)


def list_versions(conn: duckdb.DuckDBPyConnection, model: str) -> list[Version]:
    rows = conn.execute(
        f"SELECT {_VERSION} FROM versions WHERE model = ? ORDER BY created_at, version", [model]
    ).fetchall()
    return [_version(row) for row in rows]


def insert_version(conn: duckdb.DuckDBPyConnection, version: Version) -> None:
    conn.execute(
        f"INSERT INTO versions ({_VERSION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [version.model, version.version, version.artifact_sha256, version.training_data_sha256,
         version.parent_version, version.status, version.created_at, version.created_by,
         json.dumps(version.lineage, sort_keys=True, default=str) if version.lineage else None],
    )


def mark_released(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> None:
    conn.execute("UPDATE versions SET status = 'released' WHERE model = ? AND version = ?", [model, version])


def insert_artifact(
    conn: duckdb.DuckDBPyConnection, *, sha256: str, size_bytes: int, original_name: str | None, created_at: datetime
) -> None:
    # Content-addressed: the same bytes stored twice are one artifact.
    conn.execute(
        "INSERT INTO artifacts (sha256, size_bytes, original_name, created_at) SELECT ?, ?, ?, ? "
        "WHERE NOT EXISTS (SELECT 1 FROM artifacts WHERE sha256 = ?)",
        [sha256, size_bytes, original_name, created_at, sha256],
    )


def insert_dataset(conn: duckdb.DuckDBPyConnection, dataset: Dataset, *, created_at: datetime) -> None:
    conn.execute(
        "INSERT INTO datasets (sha256, format, row_count, schema_json, original_name, created_at) "
        "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM datasets WHERE sha256 = ?)",
        [dataset.sha256, dataset.format, dataset.row_count, json.dumps(dataset.columns), dataset.original_name,
         created_at, dataset.sha256],
    )


def get_dataset(conn: duckdb.DuckDBPyConnection, sha256: str) -> Dataset | None:
    row = conn.execute(
        "SELECT sha256, format, row_count, schema_json, original_name FROM datasets WHERE sha256 = ?", [sha256]
    ).fetchone()
    return Dataset.from_row(*row) if row else None


def _prediction_set(row: Row) -> PredictionSet:
    values = list(row)
    values[12], values[13] = json.loads(values[12]), json.loads(values[13])
    values[16] = json.loads(values[16]) if values[16] else []
    return PredictionSet(*values)


def insert_prediction_set(conn: duckdb.DuckDBPyConnection, ps: PredictionSet) -> None:
    conn.execute(
        f"INSERT INTO prediction_sets ({_PREDICTION_SET}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ps.id, ps.model, ps.version, ps.split, ps.batch_time, ps.dataset_sha256, ps.source_name, ps.source_sha256,
         ps.row_count, ps.id_column, ps.label_column, ps.score_column, json.dumps(ps.sensitive),
         json.dumps(ps.features), ps.created_at, ps.created_by,
         json.dumps(ps.intersections) if ps.intersections else None],
    )


def list_prediction_sets(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[PredictionSet]:
    rows = conn.execute(
        f"SELECT {_PREDICTION_SET} FROM prediction_sets WHERE model = ? AND version = ? "
        "ORDER BY created_at, id",
        [model, version],
    ).fetchall()
    return [_prediction_set(row) for row in rows]


def counts(conn: duckdb.DuckDBPyConnection) -> dict[str, int]:
    # Table names are constants of this module, never user input.
    return {
        table: one_int(conn, f"SELECT count(*) FROM {table}")
        for table in ("models", "versions", "prediction_sets")
    }


def newest_prediction_set_time(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> datetime | None:
    """When the version's newest prediction set was recorded (None without one)."""
    row = conn.execute("SELECT max(created_at) FROM prediction_sets WHERE model = ? AND version = ?",
                       [model, version]).fetchone()
    return row[0] if row else None


def latest_prediction_set(conn: duckdb.DuckDBPyConnection, model: str, version: str,
                          split: str) -> PredictionSet | None:
    row = conn.execute(
        f"SELECT {_PREDICTION_SET} FROM prediction_sets WHERE model = ? AND version = ? AND split = ? "
        "ORDER BY created_at DESC, id DESC LIMIT 1",
        [model, version, split],
    ).fetchone()
    return _prediction_set(row) if row else None


def get_prediction_set(conn: duckdb.DuckDBPyConnection, prediction_set_id: str) -> PredictionSet | None:
    row = conn.execute(f"SELECT {_PREDICTION_SET} FROM prediction_sets WHERE id = ?", [prediction_set_id]).fetchone()
    return _prediction_set(row) if row else None


def loop_origin(conn: duckdb.DuckDBPyConnection, model: str, version: str | None) -> str | None:
    """`version`, or its nearest ancestor no retraining job made: where a retraining loop through it started."""
    if version is None:
        return None
    return next((v.version for v in lineage(conn, model, version) if not (v.lineage or {}).get("job")), None)


def lineage(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[Version]:
    """The version and its ancestors, newest first (one query, not one per step; a cycle ends it)."""
    by_name = {v.version: v for v in list_versions(conn, model)}
    chain: list[Version] = []
    current: str | None = version
    while current in by_name and by_name[current] not in chain:
        chain.append(by_name[current])
        current = by_name[current].parent_version
    return chain
