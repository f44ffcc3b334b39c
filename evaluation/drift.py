"""Drift per column with Evidently 0.7's default test choice, its PSI, and dataset-level drift.

Evidently (ValueDrift, legacy stattests) drops empty and infinite values, then picks by reference
size and distinct values: ≤ 1000 reference rows → K-S for numbers with > 5 values, else
chi-square (> 2 values) or a two-proportion Z-test; > 1000 rows → normed Wasserstein for numbers
with > 5 values, else Jensen-Shannon. Counts, histograms and the Wasserstein integral run in
DuckDB; only the small K-S sample and the final p-values go through scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
from scipy import stats
from scipy.spatial import distance

from evaluation.records import MetricRecord
from evaluation.sources import is_float_type, is_integer_type, quote

Kind = Literal["num", "cat", "text"]
INTEGER_CARDINALITY_LIMIT = 10  # evidently: integers with at most this many values are categories
SMALL_REFERENCE = 1000
DATASET_DRIFT_SHARE = 0.5
METHODS = {  # evidently's stattest name → (threshold, drift when the score is ≤ / < / ≥ it, display name)
    "ks": (0.05, "le", "K-S p_value"),
    "chisquare": (0.05, "lt", "chi-square p_value"),
    "z": (0.05, "lt", "Z-test p_value"),
    "wasserstein": (0.1, "ge", "Wasserstein distance (normed)"),
    "jensenshannon": (0.1, "ge", "Jensen-Shannon distance"),
}
PSI_THRESHOLD = 0.1


@dataclass(frozen=True)
class DriftColumn:
    name: str
    sql_type: str
    role: str  # feature | sensitive | score | label


def column_kind(conn: duckdb.DuckDBPyConnection, view: str, column: DriftColumn) -> Kind:
    """Evidently's inference on the current data (evidently.core.datasets.infer_column_type)."""
    if is_float_type(column.sql_type):
        return "num"
    q = quote(column.name)
    distinct, present = conn.execute(f"SELECT count(DISTINCT {q}), count({q}) FROM {view}").fetchone()
    if is_integer_type(column.sql_type):
        return "cat" if distinct <= INTEGER_CARDINALITY_LIMIT else "num"
    if column.sql_type.upper() == "BOOLEAN":
        return "cat"
    return "text" if distinct > present * 0.5 else "cat"


def _clean(column: DriftColumn, kind: Kind) -> str:
    q = quote(column.name)
    return f"{q} IS NOT NULL AND isfinite(CAST({q} AS DOUBLE))" if kind == "num" else f"{q} IS NOT NULL"


def drift_records(conn: duckdb.DuckDBPyConnection, reference: str, current: str,
                  columns: list[DriftColumn]) -> list[MetricRecord]:
    records: list[MetricRecord] = []
    verdicts: list[tuple[str, bool]] = []
    for column in columns:
        column_records, drifted = _column_drift(conn, reference, current, column)
        records += column_records
        if drifted is not None and column.role in ("feature", "sensitive"):
            verdicts.append((column.name, drifted))
    if verdicts:
        drifted_names = [name for name, drifted in verdicts if drifted]
        share = len(drifted_names) / len(verdicts)
        detail = {"drifted_columns": drifted_names, "columns": len(verdicts), "drift_share": DATASET_DRIFT_SHARE}
        records += [
            MetricRecord("drift", "share_of_drifted_columns", None, None, share, len(verdicts), detail=detail),
            MetricRecord("drift", "dataset_drift", None, None, float(share >= DATASET_DRIFT_SHARE), len(verdicts),
                         detail=detail),
        ]
    return records


def _column_drift(conn, reference: str, current: str, column: DriftColumn) -> tuple[list[MetricRecord], bool | None]:
    kind = column_kind(conn, current, column)
    base_detail = {"role": column.role, "column_type": kind}
    if kind == "text":
        reason = ("more than half of its values are distinct, so Evidently treats it as text and trains a "
                  "classifier; govern does not compute text drift")
        return [MetricRecord("drift", "drift_score", column.name, None, None, 0, detail=base_detail | {"reason": reason})], None
    q, clean = quote(column.name), _clean(column, kind)
    union = f"SELECT {q} AS v, 1 AS r FROM {reference} WHERE {clean} UNION ALL SELECT {q}, 0 FROM {current} WHERE {clean}"
    n_ref, n_cur, n_values, ref_values = conn.execute(
        f"SELECT count(*) FILTER (r = 1), count(*) FILTER (r = 0), count(DISTINCT v), "
        f"count(DISTINCT v) FILTER (r = 1) FROM ({union})"
    ).fetchone()
    n = n_ref + n_cur
    if not n_ref or not n_cur:
        where = "reference" if not n_ref else "current"
        reason = f"the column has no values in the {where} data, so drift is undefined"
        return [MetricRecord("drift", "drift_score", column.name, None, None, n, detail=base_detail | {"reason": reason})], None

    method = _default_method(kind, n_ref, n_values)
    score = _score(conn, method, union, reference, current, clean, q)
    threshold, direction, method_name = METHODS[method]
    drifted = bool({"le": score <= threshold, "lt": score < threshold, "ge": score >= threshold}[direction])
    detail = base_detail | {"method": method, "method_name": method_name, "threshold": threshold,
                            "reference_rows": n_ref, "current_rows": n_cur}
    records = [
        MetricRecord("drift", "drift_score", column.name, None, score, n, detail=detail),
        MetricRecord("drift", "drift_detected", column.name, None, float(drifted), n, detail=detail),
    ]
    psi, binning = _psi(conn, union, kind, ref_values, n_ref, n_cur)
    records.append(MetricRecord("drift", "psi", column.name, None, psi, n,
                                detail=base_detail | {"threshold": PSI_THRESHOLD, "drift": bool(psi >= PSI_THRESHOLD),
                                                      "binning": binning}))
    return records, drifted


def _default_method(kind: Kind, n_ref: int, n_values: int) -> str:
    if n_ref <= SMALL_REFERENCE:
        if kind == "num" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "num" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _counts(conn, union: str) -> tuple[list, np.ndarray, np.ndarray]:
    rows = conn.execute(
        f"SELECT v, count(*) FILTER (r = 1), count(*) FILTER (r = 0) FROM ({union}) GROUP BY v"
    ).fetchall()
    keys = [row[0] for row in rows]
    return keys, np.array([row[1] for row in rows], dtype=float), np.array([row[2] for row in rows], dtype=float)


def _score(conn, method: str, union: str, reference: str, current: str, clean: str, q: str) -> float:
    if method == "ks":
        ref = conn.execute(f"SELECT CAST({q} AS DOUBLE) FROM {reference} WHERE {clean}").fetchnumpy()
        cur = conn.execute(f"SELECT CAST({q} AS DOUBLE) FROM {current} WHERE {clean}").fetchnumpy()
        return float(stats.ks_2samp(next(iter(ref.values())), next(iter(cur.values())))[1])
    if method == "wasserstein":
        return _wasserstein_normed(conn, union)
    keys, ref_counts, cur_counts = _counts(conn, union)
    if method == "chisquare":
        expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(stats.chisquare(cur_counts, expected)[1])
    if method == "z":
        return _z_test(keys, ref_counts, cur_counts)
    return float(distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()))


def _z_test(keys: list, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's two-proportion Z-test: share of values other than the smallest key."""
    if (ref_counts > 0).sum() == 1 and (cur_counts > 0).sum() == 1 and \
            np.argmax(ref_counts > 0) == np.argmax(cur_counts > 0):
        return 1.0
    first = keys.index(sorted(keys)[0])
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1, p2 = (n1 - ref_counts[first]) / n1, (n2 - cur_counts[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _wasserstein_normed(conn, union: str) -> float:
    """scipy.stats.wasserstein_distance (∫|F_ref − F_cur|) over the reference's population std."""
    distance_value, std = conn.execute(
        f"""
        WITH v AS (SELECT CAST(v AS DOUBLE) AS v, r FROM ({union})),
        totals AS (SELECT count(*) FILTER (r = 1) AS nr, count(*) FILTER (r = 0) AS nc,
                          stddev_pop(v) FILTER (r = 1) AS std FROM v),
        steps AS (SELECT v, count(*) FILTER (r = 1) AS cr, count(*) FILTER (r = 0) AS cc FROM v GROUP BY v),
        cdf AS (SELECT v, sum(cr) OVER w AS fr, sum(cc) OVER w AS fc, lead(v) OVER (ORDER BY v) - v AS dv
                FROM steps WINDOW w AS (ORDER BY v ROWS UNBOUNDED PRECEDING))
        SELECT sum(abs(fr / nr - fc / nc) * dv), any_value(std) FROM cdf, totals WHERE dv IS NOT NULL
        """
    ).fetchone()
    return float(distance_value or 0.0) / max(float(std or 0.0), 0.001)


def sturges_edges(low: float | int, high: float | int, size: int) -> np.ndarray:
    """np.histogram_bin_edges(data, bins="sturges") from the data's min, max and size alone."""
    width = (high - low) / (np.log2(size) + 1.0)
    bins = int(np.ceil((high - low) / width))
    return np.linspace(low, high, bins + 1, endpoint=True, dtype=float)


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    """Evidently's feel_zeroes: empty buckets get a tiny share so the logarithm stays finite."""
    smallest = percents[percents != 0].min()
    return np.where(percents == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, percents)


def _psi(conn, union: str, kind: Kind, ref_values: int, n_ref: int, n_cur: int) -> tuple[float, str]:
    """Evidently's PSI: Sturges histogram of both samples for numbers with > 20 reference values,
    else shares per value."""
    if kind == "num" and ref_values > 20:
        low, high = conn.execute(f"SELECT min(v), max(v) FROM ({union})").fetchone()
        edges = sturges_edges(low, high, n_ref + n_cur)
        bucket = " + ".join("CAST(CAST(v AS DOUBLE) >= ? AS INTEGER)" for _ in edges[1:-1]) or "0"
        rows = conn.execute(
            f"SELECT {bucket} AS b, count(*) FILTER (r = 1), count(*) FILTER (r = 0) FROM ({union}) GROUP BY b",
            [float(e) for e in edges[1:-1]],
        ).fetchall()
        ref_counts, cur_counts = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
        for b, rc, cc in rows:
            ref_counts[b], cur_counts[b] = rc, cc
        binning = f"sturges ({len(edges) - 1} bins)"
    else:
        _, ref_counts, cur_counts = _counts(conn, union)
        binning = "values"
    ref_pct, cur_pct = _fill_zeroes(ref_counts / n_ref), _fill_zeroes(cur_counts / n_cur)
    return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct))), binning
