"""SQL of evaluations and their metric records."""

from __future__ import annotations

import json

import duckdb

from evaluation import MetricRecord, MetricSet
from governance.records import Evaluation

_EVALUATION = ("id, model, version, prediction_set_id, reference_set_id, engine, params_json, records_sha256, "
               "record_count, created_at, created_by")
_SELECT_EVALUATIONS = f"SELECT {_EVALUATION} FROM evaluations WHERE model = ? AND version = ?"
_SELECT_RECORDS = ("SELECT family, metric, feature, group_value, value, n, ci_low, ci_high, detail_json "
                   "FROM metric_records WHERE evaluation_id = ? ORDER BY position")


def _evaluation(row: tuple) -> Evaluation:
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


def latest_evaluation(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> Evaluation | None:
    """The newest evaluation of the version's eval predictions (production-batch monitoring aside)."""
    row = conn.execute(
        _SELECT_EVALUATIONS + " AND prediction_set_id IN (SELECT id FROM prediction_sets WHERE split = 'eval') "
        "ORDER BY created_at DESC, id DESC LIMIT 1", [model, version]).fetchone()
    return _evaluation(row) if row else None


def metric_set(conn: duckdb.DuckDBPyConnection, evaluation: Evaluation) -> MetricSet:
    rows = conn.execute(_SELECT_RECORDS, [evaluation.id]).fetchall()
    records = tuple(MetricRecord(family, metric, feature, group, value, n, low, high, json.loads(detail))
                    for family, metric, feature, group, value, n, low, high, detail in rows)
    return MetricSet(records, evaluation.params)
