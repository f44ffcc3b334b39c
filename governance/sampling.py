"""Choose example predictions for review from a prediction set, by a named strategy, seeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from evaluation.intersections import intersection_name, intersection_sql
from evaluation.sources import quote as _quote
from governance.records import PredictionSet


def intersection_parts(feature: str, prediction_set: PredictionSet) -> list[str] | None:
    """The columns of `feature` when it is one of the set's intersections (not a column)."""
    return next((list(parts) for parts in prediction_set.intersections if intersection_name(parts) == feature), None)


def sample_examples(path: Path, prediction_set: PredictionSet, *, strategy: str, count: int, seed: int,
                    threshold: float = 0.5, group: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """Up to `count` rows as evidence dicts, most telling first.

    high_confidence_errors: wrong predictions made with the most confidence; uncertain: scores
    closest to the threshold; worst_group: rows of `group` (feature, value), errors first. Ties are
    broken by a seeded hash of the row, so the same seed gives the same sample.
    """
    if count <= 0:
        return []
    y, p = _quote(prediction_set.label_column), _quote(prediction_set.score_column)
    error = f"(CAST({p} >= $threshold AS INTEGER) <> {y})"
    where, order = {
        "high_confidence_errors": (error, f"abs({p} - $threshold) DESC"),
        "uncertain": ("TRUE", f"abs({p} - $threshold) ASC"),
        "worst_group": ("TRUE", f"{error} DESC"),
    }[strategy]
    params: dict[str, Any] = {"path": str(path), "threshold": threshold, "seed": seed, "count": count}
    if strategy == "worst_group" and group is not None:
        where = f"CAST({_quote(group[0])} AS VARCHAR) = $group"
        parts = intersection_parts(group[0], prediction_set)
        if parts:  # an intersection's group is its columns' values joined
            where = f"{intersection_sql(parts)} = $group"
        params["group"] = group[1]
    conn = duckdb.connect()
    try:
        cursor = conn.execute(
            f"SELECT file_row_number + 1 AS __row, * EXCLUDE (file_row_number) "
            f"FROM read_parquet($path, file_row_number = true) WHERE {where} "
            f"ORDER BY {order}, hash(file_row_number, $seed) LIMIT $count", params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values)) for values in cursor.fetchall()]
    finally:
        conn.close()
    examples = []
    for rank, row in enumerate(rows, start=1):
        number = row.pop("__row")
        label, score = row[prediction_set.label_column], row[prediction_set.score_column]
        examples.append({
            "row": number,
            "id": row.get(prediction_set.id_column) if prediction_set.id_column else number,
            "label": int(label), "score": float(score), "prediction": int(score >= threshold),
            "groups": {c: str(row[c]) for c in prediction_set.sensitive},
            "features": {k: v for k, v in row.items() if k not in (prediction_set.label_column,
                                                                   prediction_set.score_column,
                                                                   prediction_set.id_column)},  # "id" above
            "strategy": strategy, "rank": rank, "prediction_set": prediction_set.id,
        })
    return examples
