"""Fairness per sensitive feature: per-group rates and fairlearn's between-group parity metrics,
plus calibration (ECE, reliability bins) per group, from one grouped query per feature."""

from __future__ import annotations

import duckdb
import numpy as np

from evaluation.classification import Cells, calibration_records, group_cells
from evaluation.errors import MetricInputError
from evaluation.records import MetricRecord
from evaluation.sources import quote

GROUP_METRICS = ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def feature_cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float,
                  feature: str) -> Cells:
    nulls = conn.execute(f"SELECT count(*) FILTER ({quote(feature)} IS NULL) FROM {view}").fetchone()[0]
    if nulls:
        raise MetricInputError(f"the sensitive column {feature!r} has {nulls} empty values; name missing groups "
                               "(e.g. 'unknown') so every row belongs to a group.")
    c = group_cells(conn, view, label, score, threshold, feature)
    groups = np.unique(c["g"])
    if len(groups) < 2:
        raise MetricInputError(f"the sensitive column {feature!r} has a single group "
                               f"({groups[0] if len(groups) else None!r}); fairness compares at least two groups.")
    return c


def confusion_by_group(c: Cells) -> tuple[list[str], np.ndarray]:
    """Groups (sorted) and a (groups × 4) array of tp, fp, tn, fn."""
    groups, index = np.unique(c["g"], return_inverse=True)
    y, pred, n = c["y"], c["pred"], c["n"]

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(index[mask], weights=n[mask], minlength=len(groups))

    counts = np.stack([count((y == 1) & (pred == 1)), count((y == 0) & (pred == 1)),
                       count((y == 0) & (pred == 0)), count((y == 1) & (pred == 0))], axis=1)
    return [str(g) for g in groups], counts


def _safe(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """A rate over an empty denominator is 0, as fairlearn's confusion-matrix rates give."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def group_rates(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group metrics over the last axis; groups with no rows (in a bootstrap replicate) are NaN."""
    count = tp + fp + tn + fn
    absent = count == 0
    return {
        "count": count,
        "selection_rate": np.where(absent, np.nan, _safe(tp + fp, count)),
        "true_positive_rate": np.where(absent, np.nan, _safe(tp, tp + fn)),
        "false_positive_rate": np.where(absent, np.nan, _safe(fp, fp + tn)),
        "accuracy": np.where(absent, np.nan, _safe(tp + tn, count)),
    }


def parity(rates: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """fairlearn's between-groups differences (max − min) and ratios (min / max) over the last axis,
    worst case for equalized odds; groups without rows are left out."""
    with np.errstate(all="ignore"):
        def diff(v: np.ndarray) -> np.ndarray:
            return np.nanmax(v, axis=-1) - np.nanmin(v, axis=-1)

        def ratio(v: np.ndarray) -> np.ndarray:
            return np.nanmin(v, axis=-1) / np.nanmax(v, axis=-1)

        sr, tpr, fpr = rates["selection_rate"], rates["true_positive_rate"], rates["false_positive_rate"]
        return {
            "demographic_parity_difference": diff(sr),
            "demographic_parity_ratio": ratio(sr),
            "equalized_odds_difference": np.maximum(diff(tpr), diff(fpr)),
            "equalized_odds_ratio": np.minimum(ratio(tpr), ratio(fpr)),
            "equal_opportunity_difference": diff(tpr),
            "equal_opportunity_ratio": ratio(tpr),
        }


def fairness_records(c: Cells, feature: str) -> list[MetricRecord]:
    groups, counts = confusion_by_group(c)
    rates = group_rates(*counts.T)
    records = []
    for i, group in enumerate(groups):
        n = int(rates["count"][i])
        records += [MetricRecord("fairness", metric, feature, group, rates[metric][i], n) for metric in GROUP_METRICS]
    total = int(counts.sum())
    for metric, value in parity(rates).items():
        detail = {"groups": len(groups), "method": "between_groups"}
        if not np.isfinite(value):
            detail["reason"] = "every group's rate is 0, so the ratio 0/0 is undefined"
        records.append(MetricRecord("fairness", metric, feature, None, float(value), total, detail=detail))
    for group in groups:
        mask = c["g"] == group
        records += calibration_records({k: v[mask] for k, v in c.items()}, feature=feature, group=group)
    return records
