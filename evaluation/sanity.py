"""Sanity measures that say a model's numbers are too good, or its decisions empty, to be believed.

`sanity.feature_auc`: how well one column alone separates the label, as a ROC AUC folded so 0.5 is
no separation and 1.0 perfect either way. Numbers (and numbers or dates written as text, and dates)
are ranked as they are, with a missing value ranked below and then above every value, whichever
separates better: a column filled only for positives leaks through its gaps. Categories are scored by
their positive rate measured on the other half of the rows (cross-fitted), so that a column of many
rare categories does not separate the label merely by being measured on itself. A column that alone
separates the label almost perfectly is, far more often than not, the outcome leaking in.
"""

from __future__ import annotations

import duckdb
import numpy as np

from evaluation.records import MetricRecord
from evaluation.sources import is_float_type, is_integer_type, quote

MAX_CATEGORIES = 100  # more distinct values than this is an identifier or free text: its rate per value is noise
AS_NUMBER = 0.95  # text columns whose values are (almost) all numbers or dates are probed as numbers


def feature_separation(conn: duckdb.DuckDBPyConnection, view: str, label: str, column: str,
                       sql_type: str) -> MetricRecord:
    """The column's folded ROC AUC against the label."""
    y, x = quote(label), quote(column)
    number = _as_number(conn, view, x, sql_type)
    if number is not None:
        rows = conn.execute(f"SELECT {number} AS x, CAST({y} AS INTEGER) AS y FROM {view}").fetchnumpy()
        values = np.asarray(rows["x"], dtype=float)
        labels = np.asarray(rows["y"])
        missing = ~np.isfinite(values)
        aucs = [_auc(np.where(missing, fill, values), labels) for fill in (-np.inf, np.inf)] if missing.any() \
            else [_auc(values, labels)]
        aucs = [a for a in aucs if a is not None]
        auc = max(aucs, key=lambda a: abs(a - 0.5)) if aucs else None
        n, kind = len(values), "numeric"
        detail = {"type": kind, "missing": int(missing.sum())}
    else:
        distinct = conn.execute(f"SELECT count(DISTINCT {x}) FROM {view}").fetchone()[0]
        n, kind = conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0], "categorical"
        if distinct > MAX_CATEGORIES:
            return MetricRecord("sanity", "feature_auc", column, None, None, n, detail={
                "type": kind, "reason": f"{distinct:,} distinct values (over {MAX_CATEGORIES}): "
                                        "an identifier or free text, not probed"})
        auc = _cross_fitted_auc(conn, view, y, x)
        detail = {"type": kind, "method": "category rate from the other half of the rows"}
    if auc is None:
        detail["reason"] = "the label has one class only in these rows"
        return MetricRecord("sanity", "feature_auc", column, None, None, n, detail=detail)
    detail["direction"] = "higher values, more positives" if auc >= 0.5 else "lower values, more positives"
    return MetricRecord("sanity", "feature_auc", column, None, max(auc, 1.0 - auc), n, detail=detail)


def _as_number(conn: duckdb.DuckDBPyConnection, view: str, x: str, sql_type: str) -> str | None:
    """SQL for the column as a number (NULL where it has none), or None when it is categorical."""
    base = sql_type.upper().split("(")[0]
    if is_float_type(sql_type) or is_integer_type(sql_type) or base == "BOOLEAN":
        return f"CAST({x} AS DOUBLE)"
    if base in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS"):
        return f"CAST(epoch({x}) AS DOUBLE)"
    if base != "VARCHAR":
        return None
    present, numbers, dates = conn.execute(
        f"SELECT count({x}), count(TRY_CAST({x} AS DOUBLE)), count(TRY_CAST({x} AS TIMESTAMP)) FROM {view}").fetchone()
    if present and numbers >= AS_NUMBER * present:
        return f"TRY_CAST({x} AS DOUBLE)"
    if present and dates >= AS_NUMBER * present:
        return f"CAST(epoch(TRY_CAST({x} AS TIMESTAMP)) AS DOUBLE)"
    return None


def _auc(values: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney ROC AUC, ties counted half (scikit-learn's value); values may be ±inf."""
    positives, negatives = int((labels == 1).sum()), int((labels == 0).sum())
    if not positives or not negatives:
        return None
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    change = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[starts[1:], len(ordered)]
    ranks = np.empty(len(values))
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # average ranks over ties
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _cross_fitted_auc(conn: duckdb.DuckDBPyConnection, view: str, y: str, x: str) -> float | None:
    """ROC AUC of scoring each row by its category's positive rate in the other half of the rows
    (halves by row position; a category unseen there scores the other half's overall rate)."""
    cells = conn.execute(f"""
        WITH rows AS (SELECT coalesce(CAST({x} AS VARCHAR), '(missing)') AS v, CAST({y} AS INTEGER) AS y,
                             (row_number() OVER ()) % 2 AS half FROM {view}),
             counts AS (SELECT v, half, count(*) FILTER (y = 1) AS pos, count(*) FILTER (y = 0) AS neg
                        FROM rows GROUP BY ALL),
             overall AS (SELECT half, sum(pos) / sum(pos + neg) AS rate FROM counts GROUP BY half)
        SELECT c.pos, c.neg, coalesce(o.pos / (o.pos + o.neg), a.rate) AS score
        FROM counts c LEFT JOIN counts o ON o.v = c.v AND o.half = 1 - c.half
        LEFT JOIN overall a ON a.half = 1 - c.half""").fetchnumpy()
    pos, neg = np.asarray(cells["pos"], dtype=float), np.asarray(cells["neg"], dtype=float)
    scores = np.nan_to_num(np.asarray(cells["score"], dtype=float), nan=0.5)  # a half with no rows: no signal
    return _weighted_auc(scores, pos, neg)


def _weighted_auc(scores: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float | None:
    """ROC AUC from cells of (score, positives, negatives), ties within and between equal scores half."""
    total_pos, total_neg = pos.sum(), neg.sum()
    if not total_pos or not total_neg:
        return None
    levels, index = np.unique(scores, return_inverse=True)
    pos_at, neg_at = np.bincount(index, weights=pos), np.bincount(index, weights=neg)
    neg_below = np.cumsum(neg_at) - neg_at
    return float((pos_at * (neg_below + 0.5 * neg_at)).sum() / (total_pos * total_neg))
