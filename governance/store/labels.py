"""SQL of late labels: the arrivals of outcomes for production batches, and estimated beside realised metrics."""

from __future__ import annotations

import duckdb

from governance.records import LabelArrival
from governance.store.evaluations import _latest_per
from governance.store.rows import Row

_ARRIVAL = ("id, prediction_set_id, seq, source_name, source_sha256, dataset_sha256, file_rows, new_labels, repeated, "
            "labelled_total, evaluation_id, created_at, created_by")


def insert_arrival(conn: duckdb.DuckDBPyConnection, arrival: LabelArrival) -> None:
    conn.execute(f"INSERT INTO label_arrivals ({_ARRIVAL}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [arrival.id, arrival.prediction_set_id, arrival.seq, arrival.source_name, arrival.source_sha256,
                  arrival.dataset_sha256, arrival.file_rows, arrival.new_labels, arrival.repeated,
                  arrival.labelled_total, arrival.evaluation_id, arrival.created_at, arrival.created_by])


def list_arrivals(conn: duckdb.DuckDBPyConnection, prediction_set_id: str) -> list[LabelArrival]:
    rows = conn.execute(f"SELECT {_ARRIVAL} FROM label_arrivals WHERE prediction_set_id = ? ORDER BY seq",
                        [prediction_set_id]).fetchall()
    return [LabelArrival(*row) for row in rows]


def estimate_rows(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> list[Row]:
    """(prediction set, batch_time, ingested at, batch rows, evaluation, family, metric, feature, group, value, n,
    ci_low, ci_high) of the estimated, performance and fairness records of each production batch's latest
    evaluation, in batch order."""
    return conn.execute(
        f"SELECT p.id, p.batch_time, p.created_at, p.row_count, e.id, r.family, r.metric, r.feature, r.group_value, "
        f"r.value, r.n, r.ci_low, r.ci_high "
        f"FROM ({_latest_per('prediction_set_id', 'production')}) e "
        f"JOIN prediction_sets p ON p.id = e.prediction_set_id "
        f"JOIN metric_records r ON r.evaluation_id = e.id "
        f"WHERE e.version = ? AND r.family IN ('estimated', 'performance', 'fairness') "
        f"ORDER BY coalesce(p.batch_time, p.created_at), p.created_at, r.position", [model, version]).fetchall()
