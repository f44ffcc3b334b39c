"""Performance and calibration from one grouped pass over the predictions.

One GROUP BY yields "cells" (label × prediction × calibration bin × 1/1024 score step) with exact
counts and sums, from which every performance and calibration metric follows exactly, and which
drive the bootstrap (see bootstrap.py). Cells are plain dicts of numpy arrays, one entry per cell.
"""

from __future__ import annotations

import duckdb
import numpy as np

from evaluation.records import MetricRecord
from evaluation.sources import quote

Cells = dict[str, np.ndarray]
N_BINS = 15
# torchmetrics' bin boundaries, torch.linspace(0, 1, 16, dtype=float64), bit for bit (a test pins
# them against torch). A score of exactly 1.0 lands in a 16th bin of its own, as in torchmetrics.
BIN_EDGES = tuple(float.fromhex(h) for h in (
    "0x0.0p+0", "0x1.1111111111111p-4", "0x1.1111111111111p-3", "0x1.999999999999ap-3", "0x1.1111111111111p-2",
    "0x1.5555555555555p-2", "0x1.999999999999ap-2", "0x1.ddddddddddddep-2", "0x1.1111111111111p-1",
    "0x1.3333333333333p-1", "0x1.5555555555555p-1", "0x1.7777777777778p-1", "0x1.999999999999ap-1",
    "0x1.bbbbbbbbbbbbcp-1", "0x1.ddddddddddddep-1", "0x1.0000000000000p+0",
))
SCORE_STEPS = 1024  # fine score steps of the bootstrap's cells
EPS = float(np.finfo(np.float64).eps)  # scikit-learn's log_loss clip
# torch.bucketize(p, edges, right=True) - 1 is the number of edges after the first that are ≤ p.
# floor(p * 15) agrees except within rounding distance of an edge, where the exact count decides.
_EXACT_BIN = " + ".join(f"CAST(p >= $edge{i} AS INTEGER)" for i in range(1, len(BIN_EDGES)))
_BIN = f"CASE WHEN abs(p * 15 - round(p * 15)) < 1e-6 THEN ({_EXACT_BIN}) ELSE CAST(floor(p * 15) AS INTEGER) END"
_EDGE_PARAMS = {f"edge{i}": BIN_EDGES[i] for i in range(1, len(BIN_EDGES))}


def _rows(view: str, label: str, score: str, group: str | None = None) -> str:
    extra = f", CAST({quote(group)} AS VARCHAR) AS g" if group else ""
    return (f"SELECT CAST({quote(label)} AS INTEGER) AS y, CAST({quote(score)} AS DOUBLE) AS p{extra} "
            f"FROM {view}")


def cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float) -> Cells:
    """Exact counts and sums of score, squared error and log loss per (y, pred, bin, q)."""
    # One packed integer key groups several times faster than four key columns.
    sql = f"""
        SELECT ((y * 2 + CAST(p >= $threshold AS INTEGER)) * {N_BINS + 1} + {_BIN}) * {SCORE_STEPS + 1}
                   + CAST(floor(p * {SCORE_STEPS}) AS INTEGER) AS cell,
               count(*) AS n, sum(p) AS sp, sum((y - p) * (y - p)) AS sse,
               sum(-ln(greatest(least(CASE WHEN y = 1 THEN p ELSE 1 - p END, $upper), $lower))) AS sloss
        FROM ({_rows(view, label, score)}) GROUP BY cell ORDER BY cell"""
    params = _EDGE_PARAMS | {"threshold": threshold, "upper": 1 - EPS, "lower": EPS}
    c = _arrays(conn.execute(sql, params).fetchnumpy())
    cell = c.pop("cell").astype(np.int64)
    c["q"], rest = cell % (SCORE_STEPS + 1), cell // (SCORE_STEPS + 1)
    c["bin"], rest = rest % (N_BINS + 1), rest // (N_BINS + 1)
    c["pred"], c["y"] = rest % 2, rest // 2
    return c


def group_cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float,
                group: str, median: float = float("inf")) -> Cells:
    """Exact counts and score sums per (g, y, pred, bin, above); the group is the value as text and
    `above` says whether the score is above `median` (the scoring rate of NYC LL144's impact ratio)."""
    sql = f"""
        SELECT g, y, CAST(p >= $threshold AS INTEGER) AS pred, {_BIN} AS bin, CAST(p > $median AS INTEGER) AS above,
               count(*) AS n, sum(p) AS sp
        FROM ({_rows(view, label, score, group)}) GROUP BY ALL ORDER BY ALL"""
    return _arrays(conn.execute(sql, _EDGE_PARAMS | {"threshold": threshold, "median": median}).fetchnumpy())


def median_score(conn: duckdb.DuckDBPyConnection, view: str, score: str) -> float:
    """The sample's median score (interpolated between the middle two of an even count)."""
    return float(conn.execute(f"SELECT median(CAST({quote(score)} AS DOUBLE)) FROM {view}").fetchone()[0])


def _arrays(result: dict) -> Cells:
    return {name: np.asarray(values) for name, values in result.items()}


def roc_auc(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str) -> tuple[float | None, str | None]:
    """Mann-Whitney form of the ROC AUC, ties counted half: scikit-learn's value.

    A rank statistic needs one sort; numpy's vectorised sort of the scores is several times faster
    than a DuckDB window here, and the pair count is exact integer arithmetic.
    """
    rows = _rows(view, label, score)
    positives = np.sort(conn.execute(f"SELECT p FROM ({rows}) WHERE y = 1").fetchnumpy()["p"])
    negatives = np.sort(conn.execute(f"SELECT p FROM ({rows}) WHERE y = 0").fetchnumpy()["p"])
    if not len(positives) or not len(negatives):
        return None, "only one class is present in the labels, so ROC AUC is undefined"
    below = np.searchsorted(negatives, positives, "left").sum(dtype=np.int64)
    at_or_below = np.searchsorted(negatives, positives, "right").sum(dtype=np.int64)
    return float(int(below) + int(at_or_below)) / (2.0 * len(positives) * len(negatives)), None


def confusion(c: Cells) -> tuple[float, float, float, float]:
    """(tp, fp, tn, fn) from cells."""
    n, y, pred = c["n"], c["y"], c["pred"]
    return (float(n[(y == 1) & (pred == 1)].sum()), float(n[(y == 0) & (pred == 1)].sum()),
            float(n[(y == 0) & (pred == 0)].sum()), float(n[(y == 1) & (pred == 0)].sum()))


def ratio(numerator: float, denominator: float) -> float:
    """scikit-learn's zero_division default: 0.0 when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


def performance_values(tp: float, fp: float, tn: float, fn: float) -> dict[str, float]:
    return {
        "accuracy": ratio(tp + tn, tp + fp + tn + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }


def calibration_bins(c: Cells) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(bin, count, positives, score sum) for each non-empty calibration bin."""
    bins = np.arange(N_BINS + 1)
    count = np.bincount(c["bin"], weights=c["n"], minlength=N_BINS + 1)
    positives = np.bincount(c["bin"], weights=c["n"] * c["y"], minlength=N_BINS + 1)
    score_sum = np.bincount(c["bin"], weights=c["sp"], minlength=N_BINS + 1)
    present = count > 0
    return bins[present], count[present], positives[present], score_sum[present]


def calibration_errors(count: np.ndarray, positives: np.ndarray, score_sum: np.ndarray) -> tuple[float, float]:
    """(ece, mce) as torchmetrics computes them from binned sums."""
    gap = np.abs(positives / count - score_sum / count)
    return float((gap * count / count.sum()).sum()), float(gap.max())


def performance_records(c: Cells, auc: float | None, auc_reason: str | None) -> list[MetricRecord]:
    n = int(c["n"].sum())
    records = [MetricRecord("performance", name, None, None, value, n)
               for name, value in performance_values(*confusion(c)).items()]
    records.append(MetricRecord("performance", "roc_auc", None, None, auc, n,
                                detail={"reason": auc_reason} if auc_reason else {}))
    records.append(MetricRecord("performance", "log_loss", None, None, c["sloss"].sum() / n, n))
    tp, fp, _, _ = confusion(c)
    records.append(MetricRecord("performance", "selection_rate", None, None, (tp + fp) / n, n))
    return records


def selection_record(conn: duckdb.DuckDBPyConnection, view: str, score: str, threshold: float) -> MetricRecord:
    """performance.selection_rate from the scores alone (a batch whose labels have not arrived)."""
    n, selected = conn.execute(f"SELECT count(*), count(*) FILTER (CAST({quote(score)} AS DOUBLE) >= ?) FROM {view}",
                               [threshold]).fetchone()
    return MetricRecord("performance", "selection_rate", None, None, selected / n, n)


NOISE_DRAWS = 1_000  # label draws behind the ECE a perfectly calibrated model would show by chance


def calibrated_noise(count: np.ndarray, score_sum: np.ndarray, draws: int = NOISE_DRAWS) -> dict[str, float]:
    """The ECE a perfectly calibrated model with these scores would show from sampling alone: each bin's
    positives drawn as Binomial(its rows, its mean score) (seeded; a little wider than drawing each row's label
    from its own score, so never an underestimate by much), the median and 95th percentile of the ECEs. On a
    few thousand rows this is a floor a bound below it cannot be met under, whatever the model."""
    rows = count.astype(np.int64)
    mean = np.clip(score_sum / np.maximum(count, 1), 0.0, 1.0)
    positives = np.random.default_rng(0).binomial(rows[None, :], mean[None, :], size=(draws, len(rows)))
    eces = np.abs(positives - score_sum[None, :]).sum(axis=1) / max(float(count.sum()), 1.0)
    return {"calibrated_noise_median": float(np.median(eces)), "calibrated_noise_p95": float(np.quantile(eces, 0.95))}


def calibration_records(c: Cells, feature: str | None = None, group: str | None = None) -> list[MetricRecord]:
    """brier_score (overall only), ece, mce and the reliability bins, for all rows or one group. The overall ECE
    carries `calibrated_noise`: what sampling alone would show."""
    n = int(c["n"].sum())
    bins, count, positives, score_sum = calibration_bins(c)
    ece, mce = calibration_errors(count, positives, score_sum)
    records = []
    noise: dict[str, float] = {}
    if feature is None:
        records.append(MetricRecord("calibration", "brier_score", None, None, c["sse"].sum() / n, n))
        noise = calibrated_noise(count, score_sum)
    records += [
        MetricRecord("calibration", "ece", feature, group, ece, n, detail={"n_bins": N_BINS, "norm": "l1", **noise}),
        MetricRecord("calibration", "mce", feature, group, mce, n, detail={"n_bins": N_BINS, "norm": "max"}),
    ]
    for k, total, pos, sp in zip(bins.tolist(), count, positives, score_sum):
        records.append(MetricRecord(
            "calibration", "reliability_bin", feature, group, pos / total, total,
            detail={"bin": k, "lower": BIN_EDGES[k], "upper": BIN_EDGES[k + 1] if k < N_BINS else 1.0,
                    "mean_score": sp / total},
        ))
    return records
