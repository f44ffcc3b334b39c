"""Drift per column with Evidently 0.7's default test choice, its PSI, and dataset-level drift.

Evidently (ValueDrift, legacy stattests) drops empty and infinite values, then picks by reference
size and distinct values: ≤ 1000 reference rows → K-S for numbers with > 5 values, else
chi-square (> 2 values) or a two-proportion Z-test; > 1000 rows → normed Wasserstein for numbers
with > 5 values, else Jensen-Shannon. Category counts come from DuckDB. Numeric columns need
their values sorted (Wasserstein, K-S, histograms, distinct counts): DuckDB filters them and numpy
sorts them, which measured several times faster than a DuckDB window on this machine; every
formula then follows Evidently's and scipy's own arithmetic.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Collection, Literal, Sequence

import duckdb
import numpy as np

from evaluation.records import MetricRecord
from evaluation.sources import column_batches, is_float_type, is_integer_type, narrowed, quote

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
DISTRIBUTION_BINS = 40  # bins or values kept in a drift record for charts
# Past this magnitude a range (1e308 - -1e308) or a square (for the std) overflows a double.
_LARGEST_SAFE = 2.0 ** 500


@dataclass(frozen=True)
class DriftColumn:
    name: str
    sql_type: str
    role: str  # feature | sensitive | score | label
    reference_type: str | None = None  # None: the same as the current data's

    @property
    def numeric(self) -> bool:
        """Numbers on both sides; a column of text in either set is compared as categories of text."""
        return _is_number(self.sql_type) and _is_number(self.reference_type or self.sql_type)

    @property
    def mixed(self) -> bool:
        """The sets hold the column as different types, not both numbers ('old' among ages in the reference):
        its values are compared as text, which both types convert to."""
        return self.reference_type is not None and not self.numeric and \
            self.reference_type.upper() != self.sql_type.upper()


@dataclass(frozen=True)
class Samples:
    """One column's cleaned values: sorted arrays for numbers, (keys, counts) for categories."""

    kind: Kind
    reference: np.ndarray | None = None  # sorted values (numbers)
    current: np.ndarray | None = None
    keys: list | None = None  # category values and their counts
    reference_counts: np.ndarray | None = None
    current_counts: np.ndarray | None = None
    scale: float = 1.0  # numbers were divided by it to keep their range finite (a power of two: exact)

    @property
    def sizes(self) -> tuple[int, int]:
        if self.reference is not None:
            return len(self.reference), len(self.current)
        return int(self.reference_counts.sum()), int(self.current_counts.sum())


ABSENT_REASON = "the current data lacks the column, so the dataset share counts it as drifted"


def drift_records(open_cursor: Callable[[], duckdb.DuckDBPyConnection], reference: str, current: str,
                  columns: list[DriftColumn], rows: int, absent: Sequence[str] = (),
                  copied: Collection[str] = ()) -> list[MetricRecord]:
    """Drift records per column plus the dataset share; `open_cursor` gives a connection on which
    the `reference` and `current` views exist (one per worker thread). The views named in `copied` are read
    through batches of columns copied out of them (`sources.narrowed`), sized by `rows`, the larger view's.
    `absent` reference features the current data lacks count as drifted: leaving columns out had made a
    batch's share look lower."""
    records: list[MetricRecord] = []
    verdicts: list[tuple[str, bool]] = []
    local = threading.local()
    opened: list[duckdb.DuckDBPyConnection] = []

    def cursor() -> duckdb.DuckDBPyConnection:
        # a DuckDB connection is not shared between threads: one cursor per worker thread, opened once (one per
        # column registered both files again for every column: 9,990 columns had not finished in 550 s)
        if getattr(local, "cursor", None) is None:
            local.cursor = open_cursor()
            opened.append(local.cursor)
        return local.cursor

    def batch(numbered: tuple[int, list[DriftColumn]]) -> list[tuple[list[MetricRecord], bool | None]]:
        number, batch_columns = numbered
        conn, names = cursor(), list(dict.fromkeys(column.name for column in batch_columns))
        with narrowed(conn, reference, names, f"drift_ref_{number}", copy=reference in copied) as ref, \
                narrowed(conn, current, names, f"drift_cur_{number}", copy=current in copied) as cur:
            return [_column_drift(_samples(conn, ref, cur, column), column) for column in batch_columns]

    # Columns are independent and numpy's sorts release the GIL: two batches at a time use both cores.
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = [found for batch_results in pool.map(batch, enumerate(column_batches(columns, rows, at_least=4)))
                       for found in batch_results]
    finally:
        for conn in opened:
            conn.close()
    for column, (column_records, drifted) in zip(columns, results):
        records += column_records
        if drifted is not None and column.role in ("feature", "sensitive"):
            verdicts.append((column.name, drifted))
    for name in absent:
        records.append(MetricRecord("drift", "drift_score", name, None, None, 0,
                                    detail={"role": "feature", "reason": ABSENT_REASON}))
        verdicts.append((name, True))
    if verdicts:
        drifted_names = [name for name, drifted in verdicts if drifted]
        share = len(drifted_names) / len(verdicts)
        detail: dict[str, Any] = {"drifted_columns": drifted_names, "columns": len(verdicts),
                                  "drift_share": DATASET_DRIFT_SHARE}
        if absent:
            detail["missing_columns"] = list(absent)
        records += [
            MetricRecord("drift", "share_of_drifted_columns", None, None, share, len(verdicts), detail=detail),
            MetricRecord("drift", "dataset_drift", None, None, float(share >= DATASET_DRIFT_SHARE), len(verdicts),
                         detail=detail),
        ]
    return records


def _samples(conn: duckdb.DuckDBPyConnection, reference: str, current: str, column: DriftColumn) -> Samples:
    """Cleaned values, and the column kind as Evidently infers it from the current data."""
    q = quote(column.name)
    if column.numeric:
        fetch = f"SELECT CAST({q} AS DOUBLE) AS v FROM {{}} WHERE {q} IS NOT NULL AND isfinite(CAST({q} AS DOUBLE))"
        ref = np.sort(conn.execute(fetch.format(reference)).fetchnumpy()["v"])
        cur = np.sort(conn.execute(fetch.format(current)).fetchnumpy()["v"])
        if is_float_type(column.sql_type) or _distinct_sorted(cur) > INTEGER_CARDINALITY_LIMIT:
            scale = _scale(ref, cur)
            return Samples("num", reference=ref / scale, current=cur / scale, scale=scale)
        keys = np.union1d(ref, cur)
        return Samples("cat", keys=keys.tolist(), reference_counts=_counts_sorted(ref, keys),
                       current_counts=_counts_sorted(cur, keys))
    if column.sql_type.upper() != "BOOLEAN":
        distinct, present = conn.execute(f"SELECT count(DISTINCT {q}), count({q}) FROM {current}").fetchone()
        if distinct > present * 0.5:
            return Samples("text")
    v = f"CAST({q} AS VARCHAR)" if column.mixed else q  # '34' in one set and 34 in the other are one value
    rows = conn.execute(
        f"SELECT v, count(*) FILTER (r = 1), count(*) FILTER (r = 0) FROM ("
        f"SELECT {v} AS v, 1 AS r FROM {reference} WHERE {q} IS NOT NULL UNION ALL "
        f"SELECT {v}, 0 FROM {current} WHERE {q} IS NOT NULL) GROUP BY v ORDER BY v"
    ).fetchall()
    return Samples("cat", keys=[r[0] for r in rows], reference_counts=np.array([r[1] for r in rows], dtype=float),
                   current_counts=np.array([r[2] for r in rows], dtype=float))


def _scale(ref: np.ndarray, cur: np.ndarray) -> float:
    """A power of two that brings finite values as large as ±1e308 within ±_LARGEST_SAFE, else 1. Every drift
    test and PSI's equal-width bins are unchanged by scaling (dividing by a power of two rounds nothing), while
    the range, the differences and the squares of the unscaled values overflow: the Sturges bin count had
    been NaN and monitor crashed."""
    largest = max((float(np.max(np.abs(a[[0, -1]]))) for a in (ref, cur) if len(a)), default=0.0)
    if largest <= _LARGEST_SAFE:
        return 1.0
    return float(2.0 ** (np.frexp(largest)[1] - np.frexp(_LARGEST_SAFE)[1]))


def _is_number(sql_type: str) -> bool:
    return is_float_type(sql_type) or is_integer_type(sql_type)


def _distinct_sorted(values: np.ndarray) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0


def _counts_sorted(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    return (np.searchsorted(values, keys, "right") - np.searchsorted(values, keys, "left")).astype(float)


def _column_drift(samples: Samples, column: DriftColumn) -> tuple[list[MetricRecord], bool | None]:
    base_detail: dict[str, Any] = {"role": column.role, "column_type": samples.kind}
    if column.mixed:
        base_detail["types"] = (f"the reference holds {column.reference_type} and the current data {column.sql_type}: "
                                "compared as categories of text")
    if samples.kind == "text":
        reason = ("more than half of its values are distinct, so Evidently treats it as text and trains a "
                  "classifier; govern does not compute text drift")
        return [MetricRecord("drift", "drift_score", column.name, None, None, 0,
                             detail=base_detail | {"reason": reason})], None
    n_ref, n_cur = samples.sizes
    if not n_ref or not n_cur:
        reason = (f"the column has no values in the {'reference' if not n_ref else 'current'} data, "
                  "so drift is undefined")
        return [MetricRecord("drift", "drift_score", column.name, None, None, n_ref + n_cur,
                             detail=base_detail | {"reason": reason})], None
    if samples.kind == "num":
        ref_distinct, cur_distinct = _distinct_sorted(samples.reference), _distinct_sorted(samples.current)
        many = ref_distinct > 5 or cur_distinct > 5
        n_values = 6 if many else len(np.union1d(samples.reference, samples.current))
    else:
        ref_distinct, n_values = int((samples.reference_counts > 0).sum()), len(samples.keys)
    method = _default_method(samples.kind, n_ref, n_values)
    if samples.kind == "num" and method in ("chisquare", "z", "jensenshannon"):
        keys = np.union1d(samples.reference, samples.current)
        samples = Samples("cat", keys=keys.tolist(), reference_counts=_counts_sorted(samples.reference, keys),
                          current_counts=_counts_sorted(samples.current, keys), scale=samples.scale)
    score = _score(method, samples)
    threshold, direction, method_name = METHODS[method]
    drifted = bool({"le": score <= threshold, "lt": score < threshold, "ge": score >= threshold}[direction])
    detail = base_detail | {"method": method, "method_name": method_name, "threshold": threshold,
                            "reference_rows": n_ref, "current_rows": n_cur}
    if not np.isfinite(score):  # a constant reference (std under 0.001) and values near ±1e308
        detail |= {"reason": "the distance overflows a double (values near ±1e308), so no score is recorded"}
    psi, binning, distribution = _psi(samples, ref_distinct)
    return [
        MetricRecord("drift", "drift_score", column.name, None, score, n_ref + n_cur, detail=detail),
        MetricRecord("drift", "drift_detected", column.name, None, float(drifted), n_ref + n_cur, detail=detail),
        MetricRecord("drift", "psi", column.name, None, psi, n_ref + n_cur,
                     detail=base_detail | {"threshold": PSI_THRESHOLD, "drift": bool(psi >= PSI_THRESHOLD),
                                           "binning": binning, "distribution": distribution}),
    ], drifted


def _default_method(kind: Kind, n_ref: int, n_values: int) -> str:
    if n_ref <= SMALL_REFERENCE:
        if kind == "num" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "num" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


def _score(method: str, s: Samples) -> float:
    if method == "ks":
        from scipy.stats import ks_2samp  # small references only; scipy.stats is slow to import

        return float(ks_2samp(s.reference, s.current)[1])
    if method == "wasserstein":
        return wasserstein_normed(s.reference, s.current, scale=s.scale)
    ref, cur = s.reference_counts, s.current_counts
    if method == "chisquare":
        from scipy.special import chdtrc  # scipy.stats.chisquare's survival function

        expected = ref * (cur.sum() / ref.sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = ((cur - expected) ** 2 / expected).sum()
        return float(chdtrc(len(cur) - 1, statistic))
    if method == "z":
        return _z_test(s.keys, ref, cur)
    return jensenshannon(ref / ref.sum(), cur / cur.sum())


def wasserstein_normed(ref: np.ndarray, cur: np.ndarray, *, scale: float = 1.0) -> float:
    """scipy.stats.wasserstein_distance of two sorted samples over the reference's population std (at least
    Evidently's 0.001), for samples that were divided by `scale`.

    scipy evaluates both CDFs at every point of the merged sample. A stable argsort of the two
    sorted runs merges them in linear time and tells which sample each point came from; running
    counts then give the same CDF steps (inside a run of ties the step width is 0).
    """
    both = np.concatenate([ref, cur])
    order = np.argsort(both, kind="stable")
    values = both[order]
    del both
    ref_count = np.cumsum(order < ref.size)[:-1]
    del order
    ref_cdf = ref_count / ref.size
    cur_cdf = (np.arange(1, values.size) - ref_count) / cur.size
    del ref_count
    np.subtract(ref_cdf, cur_cdf, out=ref_cdf)
    np.abs(ref_cdf, out=ref_cdf)
    np.multiply(ref_cdf, np.diff(values), out=ref_cdf)
    return float(np.sum(ref_cdf)) / max(float(np.std(ref)), 0.001 / scale)


def jensenshannon(p: np.ndarray, q: np.ndarray) -> float:
    """scipy.spatial.distance.jensenshannon (natural log) on two share vectors."""
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / m), 0.0)
        right = np.where(q > 0, q * np.log(q / m), 0.0)
    return float(np.sqrt((np.sum(left) + np.sum(right)) / 2.0))


def _z_test(keys: list, ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Evidently's two-proportion Z-test: share of values other than the smallest key."""
    from scipy.special import ndtr  # scipy.stats.norm.cdf

    if (ref_counts > 0).sum() == 1 and (cur_counts > 0).sum() == 1 and \
            np.argmax(ref_counts > 0) == np.argmax(cur_counts > 0):
        return 1.0
    first = keys.index(sorted(keys)[0])
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1, p2 = (n1 - ref_counts[first]) / n1, (n2 - cur_counts[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - ndtr(np.abs(z))))


def sturges_edges(low: float, high: float, size: int) -> np.ndarray:
    """np.histogram_bin_edges(data, bins="sturges") from the data's min, max and size alone."""
    width = (high - low) / (np.log2(size) + 1.0)
    return np.linspace(low, high, int(np.ceil((high - low) / width)) + 1, endpoint=True)


def _histogram_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram's own counting (searchsorted on sorted data, last bin closed)."""
    cut = np.concatenate([np.searchsorted(values, edges[:-1], "left"), np.searchsorted(values, edges[-1:], "right")])
    return np.diff(cut).astype(float)


def _fill_zeroes(percents: np.ndarray) -> np.ndarray:
    """Evidently's feel_zeroes: empty buckets get a tiny share so the logarithm stays finite."""
    smallest = percents[percents != 0].min()
    return np.where(percents == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001, percents)


def _psi(s: Samples, ref_distinct: int) -> tuple[float, str, dict[str, Any]]:
    """Evidently's PSI: a Sturges histogram of both samples for numbers with > 20 reference values,
    else shares per value. Also returns the two distributions it compared, for charts."""
    n_ref, n_cur = s.sizes
    if s.kind == "num" and ref_distinct > 20:
        low, high = min(s.reference[0], s.current[0]), max(s.reference[-1], s.current[-1])
        edges = sturges_edges(low, high, n_ref + n_cur)
        ref_counts, cur_counts = _histogram_sorted(s.reference, edges), _histogram_sorted(s.current, edges)
        binning = f"sturges ({len(edges) - 1} bins)"
        shown = edges * s.scale
        labels = [f"[{shown[i]:.4g}, {shown[i + 1]:.4g}{']' if i == len(edges) - 2 else ')'}"
                  for i in range(len(edges) - 1)]
    else:
        if s.kind == "num":
            keys = np.union1d(s.reference, s.current)
            ref_counts, cur_counts = _counts_sorted(s.reference, keys), _counts_sorted(s.current, keys)
        else:
            ref_counts, cur_counts = s.reference_counts, s.current_counts
            keys = s.keys
        binning = "values"
        labels = [f"{k * s.scale:g}" if isinstance(k, (float, np.floating)) else str(k) for k in keys]
    ref_pct, cur_pct = _fill_zeroes(ref_counts / n_ref), _fill_zeroes(cur_counts / n_cur)
    psi = float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))
    return psi, binning, _distribution(labels, ref_counts / n_ref, cur_counts / n_cur)


def _distribution(labels: list[str], reference: np.ndarray, current: np.ndarray) -> dict[str, Any]:
    """The two samples' shares per bin or value (the largest DISTRIBUTION_BINS by combined share)."""
    order = np.arange(len(labels))
    truncated = len(labels) > DISTRIBUTION_BINS
    if truncated:
        order = np.sort(np.argsort(-(reference + current), kind="stable")[:DISTRIBUTION_BINS])
    return {"bins": [labels[i] for i in order], "reference_share": [round(float(reference[i]), 6) for i in order],
            "current_share": [round(float(current[i]), 6) for i in order], "truncated": truncated}
