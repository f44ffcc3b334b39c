"""Estimated performance without labels: confidence-based performance estimation (CBPE), as NannyML 0.13 computes it.

With calibrated scores, a row scored p is a positive with probability p, so the expected confusion
matrix of a batch follows from its scores alone: E[TP] = Σ p over predicted positives, E[FP] = Σ (1 − p)
over them, E[FN] = Σ p and E[TN] = Σ (1 − p) over predicted negatives. Accuracy, precision, recall, F1,
specificity and ROC AUC follow as NannyML's `estimate_*` functions take them
(nannyml/performance_estimation/confidence_based/metrics.py), and their sampling errors as its
`sampling_error/binary_classification.py` does: a standard deviation fitted on the labelled reference
(here the version's eval set) divided by √(rows × the share of rows the metric rests on), the band
being ± 3 sampling errors (`SAMPLING_ERROR_RANGE`) clipped to [0, 1].

The scores are used as they are (NannyML's `NoopCalibrator`): the estimate is only as good as the
calibration, so `estimate` first measures the eval set's ECE and refuses above a bound.

Everything is counts and sums over numpy arrays (one sort per group for ROC AUC, shared by two threads,
while a third fits the eval set), so a batch of a million rows takes a few hundredths of a second.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import duckdb
import numpy as np

from evaluation import classification
from evaluation.errors import MetricInputError
from evaluation.intersections import intersection_name, intersection_sql
from evaluation.records import MetricRecord
from evaluation.sources import Source, quote, register

SAMPLING_ERROR_RANGE = 3  # nannyml.sampling_error.SAMPLING_ERROR_RANGE
DEFAULT_MAX_ECE = 0.05
SPLIT_SORT_ROWS = 100_000  # from this many scores up, two threads sort them (below, one sort is as quick)
ROC_BLOCK = 1 << 16  # the most trapezoids of the ROC curve summed at once: arrays of 512 kB, kept in the cache
METHOD = "CBPE (NannyML 0.13, scores used as calibrated)"
PER_GROUP = ("accuracy", "precision", "recall", "f1", "roc_auc", "true_positive_rate", "false_positive_rate")
OVERALL = PER_GROUP
GAPS = ("equalized_odds_difference", "equal_opportunity_difference")
ESTIMATED = PER_GROUP + GAPS  # what the family "estimated" holds


class EstimationRefused(MetricInputError):
    """The scores are not calibrated well enough on the eval set to estimate from them."""


@dataclass(frozen=True)
class Components:
    """The sampling-error components fitted on labelled reference rows: (std, share) per metric, as
    nannyml's `*_sampling_error_components` return them (accuracy's share is 1)."""

    accuracy: tuple[float, float]
    precision: tuple[float, float]
    recall: tuple[float, float]
    f1: tuple[float, float]
    specificity: tuple[float, float]
    roc_auc: tuple[float, float]


def _bernoulli_std(ones: float, total: float) -> float:
    """np.std of an array of `ones` ones and `total - ones` zeros (NaN for an empty one, as numpy gives)."""
    if total <= 0:
        return float("nan")
    share = ones / total
    return float(np.sqrt(share * (1 - share)))


def fit_components(y: np.ndarray, p: np.ndarray, threshold: float) -> Components:
    """Sampling-error components from labelled rows (`y` 0/1, scores `p`), predictions p ≥ threshold."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    pred = p >= threshold
    n = len(y)
    tp = float(np.count_nonzero(pred & (y == 1)))
    fp = float(np.count_nonzero(pred & (y == 0)))
    tn = float(np.count_nonzero(~pred & (y == 0)))
    fn = float(np.count_nonzero(~pred & (y == 1)))
    relevant = tp + fn + fp
    if relevant:
        factor = relevant / ((fn + fp) * 0.5 + tp)
        f1 = (factor * _bernoulli_std(tp, relevant), relevant / n)
    else:
        f1 = (float("nan"), 0.0)
    return Components(
        accuracy=(_bernoulli_std(tp + tn, n), 1.0),
        precision=(_bernoulli_std(tp, tp + fp), (tp + fp) / n),
        recall=(_bernoulli_std(tp, tp + fn), (tp + fn) / n),
        f1=f1,
        specificity=(_bernoulli_std(tn, tn + fp), (tn + fp) / n),
        roc_auc=_auroc_components(y, p),
    )


def _auroc_components(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """nannyml's auroc_sampling_error_components: the spread of each positive's share of negatives
    ranked below it (the Mann-Whitney form), labels flipped when positives are the majority. Its
    quirk is kept: the positive ranked first (rank 0) is left out."""
    if np.mean(y) > 0.5:
        y, p = np.abs(y - 1), 1 - p
    order = np.argsort(p)  # numpy's default sort, as nannyml: ties fall the same way
    ranks = np.flatnonzero(y[order] == 1)
    ranks = ranks[ranks > 0]
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    with np.errstate(divide="ignore", invalid="ignore"):
        below = (ranks - np.arange(len(ranks))) / n_neg
        std = float(np.std(below)) if len(below) else float("nan")
    return std, n_pos / len(y)


@dataclass(frozen=True)
class Estimate:
    value: float | None
    sampling_error: float | None

    def band(self) -> tuple[float | None, float | None]:
        if self.value is None or self.sampling_error is None or not np.isfinite(self.sampling_error):
            return None, None
        spread = SAMPLING_ERROR_RANGE * self.sampling_error
        return max(0.0, self.value - spread), min(1.0, self.value + spread)


def _ratio(num: float, den: float) -> float:
    return num / den if den != 0 else 0.0


def _error(component: tuple[float, float], rows: int) -> float | None:
    std, share = component
    with np.errstate(divide="ignore", invalid="ignore"):
        value = std / np.sqrt(rows * share)
    return float(value) if np.isfinite(value) else None


def roc_auc_sorted(descending: np.ndarray, pool: Executor | None = None) -> float | None:
    """nannyml's estimate_roc_auc for scores already sorted from highest to lowest (calibrated = raw): the
    cumulative sums rounded to 5 decimals, as rates, under the trapezoidal rule (sklearn.metrics.auc). With
    a `pool`, a thread of it sums the second half of the curve."""
    rows = len(descending)
    if rows == 0:
        return None
    tps = np.empty(rows + 1)
    tps[0] = 0
    np.cumsum(descending, out=tps[1:])  # one running sum, in nannyml's order: its rounding is the same
    totals = (np.round(tps[-1], 5), np.round(rows - tps[-1], 5))  # the last point: positives, negatives
    if pool is None or rows <= ROC_BLOCK:
        twice = _trapezoids(tps, 0, rows, *totals)
    else:  # np.sum's first split, its two halves side by side
        second = pool.submit(_trapezoids, tps, _half(rows), rows, *totals)
        twice = _trapezoids(tps, 0, _half(rows), *totals) + second.result()
    value = twice / 2
    return value if np.isfinite(value) else None


def _half(rows: int) -> int:
    """Where numpy's pairwise summation splits `rows` terms: half of them, down to a multiple of 8."""
    return rows // 2 - rows // 2 % 8


def _trapezoids(tps: np.ndarray, start: int, stop: int, positives: float, negatives: float) -> float:
    """Twice the area of the ROC curve's trapezoids start..stop-1, added up as np.sum adds them all (its
    halves, down to blocks small enough to stay in the CPU's cache): the area is nannyml's to the last bit,
    without its five more arrays of a million points."""
    rows = stop - start
    if rows > ROC_BLOCK:
        middle = start + _half(rows)
        return (_trapezoids(tps, start, middle, positives, negatives)
                + _trapezoids(tps, middle, stop, positives, negatives))
    cum = tps[start:stop + 1]
    fpr = np.arange(start, stop + 1, dtype=np.float64)
    fpr -= cum
    with np.errstate(divide="ignore", invalid="ignore"):  # no positives or no negatives: NaN, as nannyml
        np.round(fpr, 5, out=fpr)
        fpr /= negatives
        tpr = np.round(cum, 5)
        tpr /= positives
        return float((np.diff(fpr) * (tpr[1:] + tpr[:-1])).sum())


def sorted_descending(scores: np.ndarray, pool: Executor) -> np.ndarray:
    """np.sort(scores)[::-1], the work shared with a thread of `pool` (numpy lets go of the GIL): the scores
    below a sampled median and the rest are each gathered and sorted on their own, one part after the
    other, so the values come out as one sort gives them (a NaN sorts last, in the upper part)."""
    if len(scores) < SPLIT_SORT_ROWS:
        return np.sort(scores)[::-1]
    lower = scores < np.median(scores[:: len(scores) // 1000])
    split = int(np.count_nonzero(lower))
    out = np.empty_like(scores)

    def gather_and_sort(part: slice, where: np.ndarray) -> None:
        np.compress(where, scores, out=out[part])
        out[part].sort()

    upper = pool.submit(gather_and_sort, slice(split, None), ~lower)
    gather_and_sort(slice(None, split), lower)
    upper.result()
    return out[::-1]


def estimate_scores(descending: np.ndarray, threshold: float, components: Components,
                    pool: Executor | None = None) -> dict[str, Estimate]:
    """Every estimated metric of one set of rows, from its scores sorted from highest to lowest (ROC AUC
    summed on two threads with a `pool`)."""
    rows = len(descending)
    predicted = int(np.count_nonzero(descending >= threshold))  # sorted: the first `predicted` rows
    tp = float(descending[:predicted].sum())
    fp = predicted - tp
    fn = float(descending[predicted:].sum())
    tn = (rows - predicted) - fn
    specificity = _ratio(tn, tn + fp)
    values = {
        "accuracy": (tp + tn) / rows,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(tp, tp + 0.5 * (fp + fn)),
        "roc_auc": roc_auc_sorted(descending, pool),
    }
    estimates = {name: Estimate(value, _error(getattr(components, name), rows)) for name, value in values.items()}
    estimates["true_positive_rate"] = estimates["recall"]
    fpr = 1 - specificity
    estimates["false_positive_rate"] = Estimate(fpr, _error(components.specificity, rows))
    return estimates


@dataclass(frozen=True)
class Calibration:
    """How well the reference's scores are calibrated: what `estimate` checks before it trusts them."""

    ece: float
    rows: int
    max_ece: float

    def refusal(self) -> str | None:
        if self.ece <= self.max_ece:
            return None
        return (f"the scores are not calibrated well enough to estimate from: the eval set's ECE is {self.ece:.4f}, "
                f"above the bound {self.max_ece:g} (recalibrate the model, or raise the bound with --max-ece)")


def _load(conn: duckdb.DuckDBPyConnection, name: str, score: str, label: str | None, features: Sequence[str],
          intersections: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """score (and label) as numpy, each sensitive column and intersection as integer group codes."""
    import pyarrow.compute as pc

    parts = [f"CAST({quote(score)} AS DOUBLE) AS p"]
    if label is not None:
        parts.append(f"CAST({quote(label)} AS INTEGER) AS y")
    parts += [f"CAST({quote(c)} AS VARCHAR) AS {quote('g:' + c)}" for c in features]
    parts += [f"{intersection_sql(ps)} AS {quote('g:' + intersection_name(ps))}" for ps in intersections]
    table = conn.execute(f"SELECT {', '.join(parts)} FROM {name}").arrow()
    if hasattr(table, "read_all"):
        table = table.read_all()
    out: dict[str, np.ndarray] = {"p": table.column("p").to_numpy()}
    if label is not None:
        out["y"] = table.column("y").to_numpy()
    for column in table.column_names:
        if column.startswith("g:"):
            encoded = pc.dictionary_encode(table.column(column)).combine_chunks()
            out[column] = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
            out[column + ":names"] = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return out


def calibration_of(reference: dict[str, np.ndarray], max_ece: float) -> Calibration:
    """The reference's ECE over govern's 15 bins (torchmetrics' binning, as the calibration records)."""
    p, y = reference["p"], reference["y"]
    edges = np.asarray(classification.BIN_EDGES)
    bins = np.searchsorted(edges, p, side="right") - 1  # torch.bucketize(right=True) - 1
    count = np.bincount(bins, minlength=len(edges))
    positives = np.bincount(bins, weights=y, minlength=len(edges))
    score_sum = np.bincount(bins, weights=p, minlength=len(edges))
    present = count > 0
    ece, _ = classification.calibration_errors(count[present], positives[present], score_sum[present])
    return Calibration(ece, len(p), max_ece)


def _records(estimates: dict[str, Estimate], names: Sequence[str], rows: int, feature: str | None,
             group: str | None, detail: dict) -> list[MetricRecord]:
    records = []
    for name in names:
        found = estimates[name]
        low, high = found.band()
        extra = {"sampling_error": found.sampling_error}
        if found.value is None:
            extra["reason"] = "undefined on these rows (one predicted class only, or no rows)"
        records.append(MetricRecord("estimated", name, feature, group, found.value, rows, low, high,
                                    {**detail, **extra}))
    return records


def _gap(estimates: list[tuple[str, dict[str, Estimate]]], metric: str) -> tuple[float, float | None, list[str]]:
    values = [(g, e[metric]) for g, e in estimates if e[metric].value is not None]
    high = max(values, key=lambda item: item[1].value)  # type: ignore[arg-type, return-value]
    low = min(values, key=lambda item: item[1].value)  # type: ignore[arg-type, return-value]
    errors = [high[1].sampling_error, low[1].sampling_error]
    error = float(np.hypot(*errors)) if all(e is not None for e in errors) else None
    return high[1].value - low[1].value, error, [high[0], low[0]]  # type: ignore[operator]


def _gap_records(feature: str, estimates: list[tuple[str, dict[str, Estimate]]], rows: int,
                 detail: dict) -> list[MetricRecord]:
    """Equal opportunity (TPR) and equalized odds (worst of TPR and FPR) gaps between the groups'
    estimates; the band combines the two groups' sampling errors (√(a² + b²)), an approximation
    NannyML does not make (it estimates no fairness metrics)."""
    if sum(1 for _, e in estimates if e["true_positive_rate"].value is not None) < 2:
        return [MetricRecord("estimated", m, feature, None, None, rows,
                             detail={**detail, "reason": "fewer than two groups could be estimated"}) for m in GAPS]
    tpr = _gap(estimates, "true_positive_rate")
    fpr = _gap(estimates, "false_positive_rate")
    odds = tpr if tpr[0] >= fpr[0] else fpr
    out = []
    for metric, (value, error, between) in (("equalized_odds_difference", odds),
                                            ("equal_opportunity_difference", tpr)):
        low, high = Estimate(value, error).band()
        out.append(MetricRecord("estimated", metric, feature, None, value, rows, low, high,
                                {**detail, "sampling_error": error, "between": between,
                                 "method": "difference of the groups' CBPE estimates"}))
    return out


def estimate(*, current: Source, score: str, reference: Source, reference_label: str,
             reference_score: str | None = None, sensitive: Sequence[str] = (),
             intersections: Sequence[Sequence[str]] = (), threshold: float = 0.5,
             max_ece: float = DEFAULT_MAX_ECE) -> tuple[list[MetricRecord], Calibration]:
    """Estimated records (family "estimated") of `current`, whose labels are unknown, from its scores
    and the labelled `reference` (the version's eval set): overall and per group of each sensitive
    column (and intersection), with the equalized-odds and equal-opportunity gaps per column.

    Raises EstimationRefused when the reference's ECE is above `max_ece`, MetricInputError when a
    column is missing.
    """
    if not 0 < max_ece <= 1:
        raise MetricInputError(f"the ECE bound must lie in (0, 1], not {max_ece}.")
    crossed = [tuple(parts) for parts in intersections]
    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy and pyarrow let go of the GIL: two cores work
        reading = None if crossed else pool.submit(_read_parquet, reference, reference_score or score,
                                                   reference_label, sensitive)
        cur = None if crossed else _read_parquet(current, score, None, sensitive)
        ref = None if reading is None else reading.result()
        if cur is None or ref is None:
            cur, ref = _read_sql(current, reference, score=score, reference_score=reference_score,
                                 reference_label=reference_label, sensitive=sensitive, crossed=crossed)
        return _estimate(cur, ref, threshold=threshold, max_ece=max_ece, sensitive=sensitive, crossed=crossed,
                         pool=pool)


def _read_parquet(source: Source, score: str, label: str | None,
                  features: Sequence[str]) -> dict[str, np.ndarray] | None:
    """_load's arrays straight from a Parquet file with pyarrow (no SQL engine to start), or None when the
    source is something else, or has a column whose text form SQL might write differently (only scores and
    labels as numbers, groups as text or integers, no empty values, take this path)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not isinstance(source, (str, Path)) or not Path(source).is_file():
        return None
    with open(source, "rb") as handle:
        if handle.read(4) != b"PAR1":
            return None
    try:
        parquet = pq.ParquetFile(source)  # one file's reader: quicker than read_table's datasets layer
    except (pa.ArrowException, OSError):
        return None
    with parquet:
        schema = parquet.schema_arrow
        wanted = [score, *([label] if label is not None else []), *features]
        if any(name not in schema.names for name in wanted) or len(set(wanted)) != len(wanted):
            return None
        numeric = [schema.field(c).type for c in wanted[: 2 if label is not None else 1]]
        groups = [schema.field(c).type for c in features]
        if not all(pa.types.is_floating(t) or pa.types.is_integer(t) for t in numeric) or not all(
                pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_integer(t) for t in groups):
            return None
        table = parquet.read(columns=wanted)
    if any(table.column(c).null_count for c in wanted):
        return None
    out: dict[str, np.ndarray] = {"p": table.column(score).to_numpy().astype(np.float64, copy=False)}
    if label is not None:
        out["y"] = table.column(label).to_numpy().astype(np.int64, copy=False)
    for column in features:
        encoded = pc.dictionary_encode(table.column(column).cast(pa.string())).combine_chunks()
        out["g:" + column] = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        out["g:" + column + ":names"] = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return out


def _read_sql(current: Source, reference: Source, *, score: str, reference_score: str | None,
              reference_label: str, sensitive: Sequence[str],
              crossed: list[tuple[str, ...]]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    conn = duckdb.connect()
    try:
        for name, source, what in (("cur", current, "current"), ("ref", reference, "reference")):
            types = register(conn, name, source, what)
            wanted = [score if name == "cur" else reference_score or score, *sensitive]
            wanted += [reference_label] if name == "ref" else []
            missing = [c for c in wanted if c not in types]
            if missing:
                raise MetricInputError(f"the {what} data has no column {missing[0]!r}.")
        cur = _load(conn, "cur", score, None, sensitive, crossed)
        ref = _load(conn, "ref", reference_score or score, reference_label, sensitive, crossed)
    finally:
        conn.close()
    return cur, ref


def _estimate(cur: dict[str, np.ndarray], ref: dict[str, np.ndarray], *, threshold: float, max_ece: float,
              sensitive: Sequence[str], crossed: list[tuple[str, ...]],
              pool: Executor) -> tuple[list[MetricRecord], Calibration]:
    if len(ref["p"]) == 0 or len(cur["p"]) == 0:
        raise MetricInputError("estimation needs rows in both the batch and the eval set.")
    # the eval set's calibration and sampling errors are fitted while the batch's scores are sorted
    fitted = pool.submit(lambda: (calibration_of(ref, max_ece), fit_components(ref["y"], ref["p"], threshold)))
    descending = sorted_descending(cur["p"], pool)  # values only: ROC AUC needs no permutation
    calibration, components = fitted.result()
    refusal = calibration.refusal()
    if refusal:
        raise EstimationRefused(refusal)
    detail = {"kind": "estimated", "method": METHOD, "reference_rows": calibration.rows,
              "reference_ece": calibration.ece, "threshold": threshold}
    records = _records(estimate_scores(descending, threshold, components, pool), OVERALL, len(cur["p"]), None,
                       None, detail)
    for feature in [*sensitive, *(intersection_name(ps) for ps in crossed)]:
        records += _feature_records(feature, cur, ref, threshold, detail, pool)
    return records, calibration


def _feature_records(feature: str, cur: dict[str, np.ndarray], ref: dict[str, np.ndarray], threshold: float,
                     detail: dict, pool: Executor) -> list[MetricRecord]:
    codes, names = cur["g:" + feature], cur["g:" + feature + ":names"]
    ref_codes, ref_names = ref["g:" + feature], ref["g:" + feature + ":names"]
    ref_index = {name: i for i, name in enumerate(ref_names.tolist())}
    # rows grouped (a stable radix sort of small integer codes), each group's scores sorted on their own
    small = codes.astype(np.uint16) if len(names) <= np.iinfo(np.uint16).max else codes
    grouped = cur["p"][np.argsort(small, kind="stable")]
    sizes = np.bincount(codes, minlength=len(names))
    starts = np.r_[0, np.cumsum(sizes)]
    records: list[MetricRecord] = []
    estimates: list[tuple[str, dict[str, Estimate]]] = []
    for code in sorted(range(len(names)), key=lambda i: str(names[i])):
        group = str(names[code])
        rows = int(sizes[code])
        scores = sorted_descending(grouped[starts[code]:starts[code + 1]], pool)
        if group not in ref_index:
            records += [MetricRecord("estimated", m, feature, group, None, rows, detail={
                **detail, "reason": f"the eval set has no rows of {feature}={group}, so nothing to fit on"})
                for m in PER_GROUP]
            continue
        mask = ref_codes == ref_index[group]
        found = estimate_scores(scores, threshold, fit_components(ref["y"][mask], ref["p"][mask], threshold), pool)
        estimates.append((group, found))
        records += _records(found, PER_GROUP, rows, feature, group, {**detail, "reference_rows": int(mask.sum())})
    return records + _gap_records(feature, estimates, len(codes), detail)
