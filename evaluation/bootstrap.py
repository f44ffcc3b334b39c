"""Seeded percentile-bootstrap intervals, computed on cells instead of rows.

Resampling n rows with replacement is the same as drawing how many times each row is taken from a
multinomial. Every headline metric is a function of per-cell counts and sums (cells from
classification.py: label × prediction × calibration bin × 1/1024 score step), so drawing the cell
counts from Multinomial(n, cell shares) resamples exactly for every count-based metric
(accuracy, precision, recall, F1, per-group rates, parity metrics). For metrics that also sum
scores within a cell (Brier, log loss, ECE, MCE) a resampled cell contributes its count times the
cell's mean; scores within a cell differ by under 1/1024, so this is the row bootstrap up to that
rounding. ROC AUC's replicates, which see ties within a cell, are shifted by the difference
between the exact AUC and the cell AUC of the full sample. The cost is milliseconds at any size.
"""

from __future__ import annotations

import warnings

import numpy as np

from evaluation.classification import N_BINS, SCORE_STEPS, Cells
from evaluation.fairness import GROUP_METRICS, measures

UNSTABLE_BELOW = 30


def _percentiles(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the first axis (the replicates)."""
    alpha = (1 - confidence) / 2
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined in every replicate stays NaN
        low, high = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return low, high


def _safe(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def _draw(counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    total = int(counts.sum())
    return rng.multinomial(total, counts / total, size=resamples).astype(float)


def overall_intervals(c: Cells, *, auc_exact: float | None, resamples: int, seed: int,
                      confidence: float) -> dict[str, tuple[float, float]]:
    """Intervals for performance, brier_score, log_loss, ece and mce over all rows."""
    rng = np.random.default_rng(seed)
    n, y, pred = c["n"].astype(float), c["y"], c["pred"]
    k = _draw(n, resamples, rng)
    total = n.sum()
    tp, fp = k[:, (y == 1) & (pred == 1)].sum(1), k[:, (y == 0) & (pred == 1)].sum(1)
    tn, fn = k[:, (y == 0) & (pred == 0)].sum(1), k[:, (y == 1) & (pred == 0)].sum(1)
    values = {
        "accuracy": (tp + tn) / total,
        "precision": _safe(tp, tp + fp),
        "recall": _safe(tp, tp + fn),
        "f1": _safe(2 * tp, 2 * tp + fp + fn),
        "brier_score": k @ (c["sse"] / n) / total,
        "log_loss": k @ (c["sloss"] / n) / total,
    }
    one_hot = np.eye(N_BINS + 1)[c["bin"]]
    count_bin = k @ one_hot
    gap = np.abs(_safe(k @ (one_hot * y[:, None]), count_bin)
                 - _safe(k @ (one_hot * (c["sp"] / n)[:, None]), count_bin))
    values["ece"] = (gap * count_bin).sum(1) / total
    values["mce"] = gap.max(1)
    if auc_exact is not None:
        values["roc_auc"] = _cell_auc(k, c) + (auc_exact - _cell_auc(n[None, :], c)[0])
    intervals = {}
    for metric, replicates in values.items():
        low, high = _percentiles(replicates, confidence)
        intervals[metric] = (float(low), float(high))
    return intervals


def _cell_auc(k: np.ndarray, c: Cells) -> np.ndarray:
    q, y = c["q"], c["y"]
    one_hot = np.zeros((len(q), SCORE_STEPS + 1))
    one_hot[np.arange(len(q)), q] = 1.0
    pos, neg = k @ (one_hot * (y == 1)[:, None]), k @ (one_hot * (y == 0)[:, None])
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(1) / (pos.sum(1) * neg.sum(1))


def group_intervals(confusion: np.ndarray, *, resamples: int, seed: int, confidence: float,
                    eligible: np.ndarray | None = None, levels: list | None = None
                    ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, tuple[float, float]],
                               list[dict[str, tuple[float, float]]]]:
    """Intervals for each group's measures, for the parity metrics of one sensitive feature, and for
    its parity metrics per evidence level (see fairness.measures).

    `confusion` is (groups × 2 × 4): score at or below / above the median × tp, fp, tn, fn. Returns
    (per-group metric → (lows, highs) by group, parity metric → (low, high), one such dict per level).
    The median and which groups are eligible for impact ratios stay those of the sample.
    """
    rng = np.random.default_rng(seed)
    groups = confusion.shape[0]
    eligible = np.ones(groups, dtype=bool) if eligible is None else eligible
    k = _draw(confusion.reshape(-1), resamples, rng).reshape(resamples, groups, 2, 4)
    per_group, overall, by_level = measures(k, eligible, levels or [], confusion.sum(axis=(1, 2)))
    group_ci = {metric: _percentiles(per_group[metric], confidence) for metric in GROUP_METRICS}

    def bounds(values: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
        return {metric: tuple(float(b) for b in _percentiles(replicates, confidence))
                for metric, replicates in values.items()}

    return group_ci, bounds(overall), [bounds(level) for level in by_level]
