"""SQL of evaluations and their metric records."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb

from evaluation import MetricRecord, MetricSet
from governance.records import Evaluation
from governance.store.rows import Row

_EVALUATION = ("id, model, version, prediction_set_id, reference_set_id, engine, params_json, records_sha256, "
               "record_count, created_at, created_by")
_SELECT_EVALUATIONS = f"SELECT {_EVALUATION} FROM evaluations WHERE model = ? AND version = ?"
_SELECT_RECORDS = ("SELECT family, metric, feature, group_value, value, n, ci_low, ci_high, detail_json "
                   "FROM metric_records WHERE evaluation_id = ? ORDER BY position")


def _evaluation(row: Row) -> Evaluation:
    values = list(row)
    values[6] = json.loads(values[6])
    return Evaluation(*values)


def insert_evaluation(conn: duckdb.DuckDBPyConnection, evaluation: Evaluation, metric_set: MetricSet) -> None:
    conn.execute(
        f"INSERT INTO evaluations ({_EVALUATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [evaluation.id, evaluation.model, evaluation.version, evaluation.prediction_set_id,
         evaluation.reference_set_id, evaluation.engine, json.dumps(evaluation.params, sort_keys=True),
         evaluation.records_sha256, evaluation.record_count, evaluation.created_at, evaluation.created_by],
    )
    conn.executemany(
        "INSERT INTO metric_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[evaluation.id, i, r.family, r.metric, r.feature, r.group, r.value, r.n, r.ci_low, r.ci_high,
          json.dumps(r.detail, sort_keys=True)] for i, r in enumerate(metric_set.records)],
    )


def list_evaluations(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[Evaluation]:
    rows = conn.execute(_SELECT_EVALUATIONS + " ORDER BY created_at, id", [model, version]).fetchall()
    return [_evaluation(row) for row in rows]


def newest_evaluation_time(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> datetime | None:
    """When the version's newest evaluation was recorded (None without one)."""
    row = conn.execute("SELECT max(created_at) FROM evaluations WHERE model = ? AND version = ?",
                       [model, version]).fetchone()
    return row[0] if row else None


def latest_evaluation(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Evaluation | None:
    """The newest evaluation of the version's eval predictions (production-batch monitoring aside)."""
    row = conn.execute(
        _SELECT_EVALUATIONS + " AND prediction_set_id IN (SELECT id FROM prediction_sets WHERE split = 'eval') "
        "ORDER BY created_at DESC, id DESC LIMIT 1", [model, version]).fetchone()
    return _evaluation(row) if row else None


def latest_evaluation_of(conn: duckdb.DuckDBPyConnection, prediction_set_id: str) -> Evaluation | None:
    """The newest evaluation of one prediction set (a version's challenger, say)."""
    row = conn.execute(
        f"SELECT {_EVALUATION} FROM evaluations WHERE prediction_set_id = ? ORDER BY created_at DESC, id DESC LIMIT 1",
        [prediction_set_id]).fetchone()
    return _evaluation(row) if row else None


def metric_set(conn: duckdb.DuckDBPyConnection, evaluation: Evaluation) -> MetricSet:
    rows = conn.execute(_SELECT_RECORDS, [evaluation.id]).fetchall()
    records = tuple(MetricRecord(family, metric, feature, group, value, n, low, high, json.loads(detail))
                    for family, metric, feature, group, value, n, low, high, detail in rows)
    return MetricSet(records, evaluation.params)


def _latest_per(partition: str, split: str) -> str:
    """Evaluations of `split` prediction sets, the newest one per `partition` (a column of evaluations)."""
    return (f"SELECT e.* FROM evaluations e JOIN prediction_sets p ON p.id = e.prediction_set_id "
            f"WHERE e.model = ? AND p.split = '{split}' "
            f"QUALIFY row_number() OVER (PARTITION BY e.{partition} ORDER BY e.created_at DESC, e.id DESC) = 1")


def metric_trend(conn: duckdb.DuckDBPyConnection, model: str, metrics: list[str]) -> list[Row]:
    """(version, version created_at, evaluation id, metric, feature, value, ci_low, ci_high, n) of the
    overall (group-less) `metrics` of every version's latest eval evaluation, oldest version first."""
    return conn.execute(
        f"SELECT v.version, v.created_at, e.id, r.metric, r.feature, r.value, r.ci_low, r.ci_high, r.n "
        f"FROM ({_latest_per('version', 'eval')}) e "
        f"JOIN versions v ON v.model = e.model AND v.version = e.version "
        f"JOIN metric_records r ON r.evaluation_id = e.id "
        f"WHERE r.group_value IS NULL AND list_contains(?, r.metric) "
        f"ORDER BY v.created_at, v.version, r.position", [model, metrics]).fetchall()


def gated_trend(conn: duckdb.DuckDBPyConnection, model: str, names: list[str]) -> list[Row]:
    """(version, "family.metric", feature, value, ci_low, ci_high) of the overall records named `names`
    ("family.metric", as policies name them) of every version's latest eval evaluation, oldest first."""
    return conn.execute(
        f"SELECT v.version, r.family || '.' || r.metric, r.feature, r.value, r.ci_low, r.ci_high "
        f"FROM ({_latest_per('version', 'eval')}) e "
        f"JOIN versions v ON v.model = e.model AND v.version = e.version "
        f"JOIN metric_records r ON r.evaluation_id = e.id "
        f"WHERE r.group_value IS NULL AND list_contains(?, r.family || '.' || r.metric) "
        f"ORDER BY v.created_at, v.version, r.position", [model, names]).fetchall()


def drift_timeline(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[Row]:
    """(prediction set, batch_time, ingested at, evaluation, metric, feature, value, method) of the
    drift records of each production batch's latest evaluation, in batch order."""
    return conn.execute(
        f"SELECT p.id, p.batch_time, p.created_at, e.id, r.metric, r.feature, r.value, "
        f"json_extract_string(r.detail_json, '$.method_name') "
        f"FROM ({_latest_per('prediction_set_id', 'production')}) e "
        f"JOIN prediction_sets p ON p.id = e.prediction_set_id "
        f"JOIN metric_records r ON r.evaluation_id = e.id "
        f"WHERE e.version = ? AND r.family = 'drift' AND r.metric IN ('drift_score', 'share_of_drifted_columns') "
        f"ORDER BY coalesce(p.batch_time, p.created_at), p.created_at, r.position", [model, version]).fetchall()
