"""Sanity measures that say a model's numbers are too good, or its decisions empty, to be believed.

`sanity.feature_auc`: how well one column alone separates the label, as the ROC AUC of the column's
values (numbers) or of its categories' positive rates (categories), folded so 0.5 is no separation
and 1.0 perfect either way. A column that alone separates the label almost perfectly is, far more
often than not, the outcome leaking in (recorded after the fact, or derived from the label).
"""

from __future__ import annotations

import duckdb
import numpy as np

from evaluation.records import MetricRecord
from evaluation.sources import is_float_type, is_integer_type, quote

MAX_CATEGORIES = 100  # more distinct values than this is an identifier or free text: its rate per value is noise


def feature_separation(conn: duckdb.DuckDBPyConnection, view: str, label: str, column: str,
                       sql_type: str) -> MetricRecord:
    """The column's folded ROC AUC against the label, over the rows where the column has a value."""
    y, x = quote(label), quote(column)
    numeric = is_float_type(sql_type) or is_integer_type(sql_type) or sql_type.upper() == "BOOLEAN"
    if numeric:
        rows = conn.execute(f"SELECT CAST({x} AS DOUBLE) AS x, CAST({y} AS INTEGER) AS y FROM {view} "
                            f"WHERE {x} IS NOT NULL AND isfinite(CAST({x} AS DOUBLE))").fetchnumpy()
        auc = _auc(rows["x"], rows["y"])
        n, kind = len(rows["x"]), "numeric"
    else:
        cells = conn.execute(f"SELECT coalesce(CAST({x} AS VARCHAR), '(missing)') AS v, "
                             f"count(*) FILTER ({y} = 1) AS pos, count(*) FILTER ({y} = 0) AS neg "
                             f"FROM {view} GROUP BY ALL").fetchnumpy()
        n, kind = int(cells["pos"].sum() + cells["neg"].sum()), "categorical"
        if len(cells["v"]) > MAX_CATEGORIES:
            return MetricRecord("sanity", "feature_auc", column, None, None, n, detail={
                "type": kind, "reason": f"{len(cells['v']):,} distinct values (over {MAX_CATEGORIES}): "
                                        "an identifier or free text, not probed"})
        auc = _category_auc(cells["pos"].astype(float), cells["neg"].astype(float))
    detail = {"type": kind}
    if auc is None:
        detail["reason"] = "the rows with a value hold one class only"
        return MetricRecord("sanity", "feature_auc", column, None, None, n, detail=detail)
    detail["direction"] = "higher values, more positives" if auc >= 0.5 else "lower values, more positives"
    return MetricRecord("sanity", "feature_auc", column, None, max(auc, 1.0 - auc), n, detail=detail)


def _auc(values: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney ROC AUC, ties counted half (scikit-learn's value)."""
    positives, negatives = int((labels == 1).sum()), int((labels == 0).sum())
    if not positives or not negatives:
        return None
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], len(ordered)]
    average = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _category_auc(pos: np.ndarray, neg: np.ndarray) -> float | None:
    """ROC AUC of scoring each row by its category's positive rate (tied within a category and
    between categories of equal rate)."""
    total_pos, total_neg = pos.sum(), neg.sum()
    if not total_pos or not total_neg:
        return None
    rate = pos / (pos + neg)
    levels, index = np.unique(rate, return_inverse=True)
    pos_at, neg_at = np.bincount(index, weights=pos), np.bincount(index, weights=neg)
    neg_below = np.cumsum(neg_at) - neg_at
    return float((pos_at * (neg_below + 0.5 * neg_at)).sum() / (total_pos * total_neg))
