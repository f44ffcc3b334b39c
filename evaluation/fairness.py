"""Fairness per sensitive feature: per-group rates and fairlearn's between-group parity metrics,
plus calibration (ECE, reliability bins) per group, from one grouped query per feature."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from evaluation.classification import base_select, calibration_records
from evaluation.errors import MetricInputError
from evaluation.records import MetricRecord
from evaluation.sources import quote

GROUP_METRICS = ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


def group_cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float,
                feature: str) -> pd.DataFrame:
    """Exact counts and score sums per (group, y, pred, bin); the group is the value as text."""
    nulls = conn.execute(f"SELECT count(*) FILTER ({quote(feature)} IS NULL) FROM {view}").fetchone()[0]
    if nulls:
        raise MetricInputError(f"the sensitive column {feature!r} has {nulls} empty values; name missing groups "
                               "(e.g. 'unknown') so every row belongs to a group.")
    base, params = base_select(view, label, score, threshold, f", CAST({quote(feature)} AS VARCHAR) AS g")
    frame = conn.execute(
        f"SELECT g, y, pred, bin, count(*) AS n, sum(p) AS sp FROM ({base}) GROUP BY ALL ORDER BY ALL", params
    ).df()
    if frame["g"].nunique() < 2:
        only = frame["g"].iloc[0] if len(frame) else None
        raise MetricInputError(f"the sensitive column {feature!r} has a single group ({only!r}); "
                               "fairness compares at least two groups.")
    return frame


def rates(tp: np.ndarray, fp: np.ndarray, tn: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-group rates as fairlearn computes them (a rate over an empty denominator is 0)."""
    n = tp + fp + tn + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        def safe(num, den):
            return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)

        return {
            "count": n.astype(float),
            "selection_rate": np.where(n > 0, (tp + fp) / np.where(n > 0, n, 1), np.nan),
            "true_positive_rate": safe(tp, tp + fn),
            "false_positive_rate": safe(fp, fp + tn),
            "accuracy": np.where(n > 0, (tp + tn) / np.where(n > 0, n, 1), np.nan),
        }


def parity(per_group: dict[str, np.ndarray]) -> dict[str, float]:
    """fairlearn's between-groups differences (max − min) and ratios (min / max), worst case for
    equalized odds. Groups absent from a bootstrap replicate (count 0) are left out."""
    present = per_group["count"] > 0

    def diff(values: np.ndarray) -> float:
        v = values[present]
        return float(v.max() - v.min())

    def ratio(values: np.ndarray) -> float:
        v = values[present]
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(v.min()) / np.float64(v.max()))

    sr, tpr, fpr = per_group["selection_rate"], per_group["true_positive_rate"], per_group["false_positive_rate"]
    return {
        "demographic_parity_difference": diff(sr),
        "demographic_parity_ratio": ratio(sr),
        "equalized_odds_difference": max(diff(tpr), diff(fpr)),
        "equalized_odds_ratio": min(ratio(tpr), ratio(fpr)),
        "equal_opportunity_difference": diff(tpr),
        "equal_opportunity_ratio": ratio(tpr),
    }


def confusion_by_group(frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Groups (sorted) and a (groups × 4) array of tp, fp, tn, fn."""
    table = frame.groupby(["g", "y", "pred"])["n"].sum().unstack(["y", "pred"], fill_value=0)
    for key in ((1, 1), (0, 1), (0, 0), (1, 0)):
        if key not in table.columns:
            table[key] = 0
    counts = table[[(1, 1), (0, 1), (0, 0), (1, 0)]].to_numpy(dtype=float)
    return [str(g) for g in table.index], counts


def fairness_records(frame: pd.DataFrame, feature: str) -> list[MetricRecord]:
    groups, counts = confusion_by_group(frame)
    per_group = rates(*counts.T)
    records = []
    for i, group in enumerate(groups):
        n = int(per_group["count"][i])
        for metric in GROUP_METRICS:
            records.append(MetricRecord("fairness", metric, feature, group, per_group[metric][i], n))
    total = int(counts.sum())
    for metric, value in parity(per_group).items():
        detail = {"groups": len(groups), "method": "between_groups"}
        if not np.isfinite(value):
            detail["reason"] = "every group's rate is 0, so the ratio 0/0 is undefined"
        records.append(MetricRecord("fairness", metric, feature, None, value, total, detail=detail))
    for group in groups:
        group_frame = frame[frame["g"] == group].assign(sse=0.0, sloss=0.0)
        records += calibration_records(group_frame, feature=feature, group=group)
    return records
