"""Fairness per sensitive feature (or intersection of features): per-group rates, NYC Local Law 144's
impact ratios, fairlearn's between-group parity metrics over all groups and over the groups with
enough rows, and calibration (ECE, reliability bins) per group — from one grouped query per feature.

Everything follows from per-group counts of (score above the sample's median) × (tp, fp, tn, fn),
so the bootstrap (bootstrap.py) recomputes every measure from resampled counts with the same code.
"""

from __future__ import annotations

import duckdb
import numpy as np

from evaluation.classification import Cells, calibration_records, group_cells
from evaluation.errors import MetricInputError
from evaluation.records import MetricRecord
from evaluation.sources import quote

GROUP_METRICS = ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy",
                 "scoring_rate", "impact_ratio", "scoring_impact_ratio")
IMPACT_MIN_SHARE = 0.02  # NYC LL144 lets a bias audit leave out categories under 2 % of the data
def feature_cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float,
                  feature: str, median: float = float("inf")) -> Cells:
    nulls = conn.execute(f"SELECT count(*) FILTER ({quote(feature)} IS NULL) FROM {view}").fetchone()[0]
    if nulls:
        raise MetricInputError(f"the sensitive column {feature!r} has {nulls} empty values; name missing groups "
                               "(e.g. 'unknown') so every row belongs to a group.")
    c = group_cells(conn, view, label, score, threshold, feature, median)
    groups = np.unique(c["g"])
    if len(groups) < 2:
        raise MetricInputError(f"the sensitive column {feature!r} has a single group "
                               f"({groups[0] if len(groups) else None!r}); fairness compares at least two groups.")
    return c


def confusion_by_group(c: Cells) -> tuple[list[str], np.ndarray]:
    """Groups (sorted) and a (groups × 2 × 4) array: score at or below / above the median × tp, fp, tn, fn."""
    groups, index = np.unique(c["g"], return_inverse=True)
    y, pred, n = c["y"], c["pred"], c["n"]
    above = c["above"] if "above" in c else np.zeros_like(y)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(index[mask], weights=n[mask], minlength=len(groups))

    counts = np.stack([np.stack([count((above == a) & (y == 1) & (pred == 1)),
                                 count((above == a) & (y == 0) & (pred == 1)),
                                 count((above == a) & (y == 0) & (pred == 0)),
                                 count((above == a) & (y == 1) & (pred == 0))],
                                axis=1) for a in (0, 1)], axis=1)
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


def evidence_levels(sizes: np.ndarray) -> list[tuple[int, int]]:
    """(m, k) for each distinct group size m that leaves two or more groups with at least m rows,
    smallest first: with the groups sorted by size (ascending, stable), those from position k on. The
    first level is every group (fairlearn's comparison)."""
    ordered = np.sort(sizes, kind="stable")
    levels = []
    for m in np.unique(ordered):
        start = int(np.searchsorted(ordered, m, side="left"))
        if len(ordered) - start >= 2:
            levels.append((int(m), start))
    return levels


def _by_level(rates: dict[str, np.ndarray], sizes: np.ndarray,
              levels: list[tuple[int, int]]) -> list[dict[str, np.ndarray]]:
    """Parity over each level's groups at once: with groups sorted by size, each level is a suffix, so
    one running max and min from the largest group down gives every level's gaps (the bootstrap's
    replicates included) in time linear in the groups, however many levels there are."""
    if not levels:
        return []
    order = np.argsort(sizes, kind="stable")

    def suffix(values: np.ndarray, ufunc) -> np.ndarray:
        flipped = values[..., order][..., ::-1]
        return ufunc.accumulate(flipped, axis=-1)[..., ::-1]  # fmax/fmin skip NaN (absent groups)

    starts = np.array([start for _, start in levels])
    with np.errstate(all="ignore"):
        spans = {}
        for name in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            high, low = suffix(rates[name], np.fmax)[..., starts], suffix(rates[name], np.fmin)[..., starts]
            spans[name] = (high - low, low / high)
    sr, tpr, fpr = spans["selection_rate"], spans["true_positive_rate"], spans["false_positive_rate"]
    combined = {
        "demographic_parity_difference": sr[0], "demographic_parity_ratio": sr[1],
        "equalized_odds_difference": np.maximum(tpr[0], fpr[0]), "equalized_odds_ratio": np.minimum(tpr[1], fpr[1]),
        "equal_opportunity_difference": tpr[0], "equal_opportunity_ratio": tpr[1],
    }
    return [{metric: values[..., i] for metric, values in combined.items()} for i in range(len(levels))]


def measures(counts: np.ndarray, eligible: np.ndarray, levels: list[tuple[int, int]],
             sizes: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray],
                                                            list[dict[str, np.ndarray]]]:
    """From counts [..., groups, 2, 4] (as confusion_by_group gives, with any leading replicate axes):
    per-group measures [..., groups], parity over all groups [...], and parity per evidence level
    (levels from `evidence_levels(sizes)`, `sizes` the sample's group sizes).

    Impact ratios (NYC LL144) divide a group's selection rate — for scores, its scoring rate, the
    share above the sample's median score — by the highest among the `eligible` groups (those with
    at least 2 % of the rows); groups not eligible get none.
    """
    c4 = counts.sum(axis=-2)
    per_group = group_rates(c4[..., 0], c4[..., 1], c4[..., 2], c4[..., 3])
    count = per_group["count"]
    above = counts[..., 1, :].sum(axis=-1)
    per_group["scoring_rate"] = np.where(count == 0, np.nan, _safe(above, count))
    with np.errstate(all="ignore"):
        for rate, ratio in (("selection_rate", "impact_ratio"), ("scoring_rate", "scoring_impact_ratio")):
            values = per_group[rate]
            highest = np.nanmax(np.where(eligible, values, np.nan), axis=-1, keepdims=True) if eligible.any() \
                else np.full(values.shape[:-1] + (1,), np.nan)
            per_group[ratio] = np.where(eligible, values / highest, np.nan)
    rates = {k: per_group[k] for k in ("selection_rate", "true_positive_rate", "false_positive_rate")}
    sizes = counts.sum(axis=(-2, -1)) if sizes is None else sizes  # the sample's: they order the levels
    return per_group, parity(rates), _by_level(rates, sizes, levels)


def impact_eligible(sizes: np.ndarray, min_share: float = IMPACT_MIN_SHARE) -> np.ndarray:
    return sizes >= min_share * sizes.sum()


def fairness_records(c: Cells, feature: str, *, impact_min_share: float = IMPACT_MIN_SHARE) -> list[MetricRecord]:
    groups, counts = confusion_by_group(c)
    sizes = counts.sum(axis=(1, 2))
    eligible = impact_eligible(sizes, impact_min_share)
    levels = evidence_levels(sizes)
    per_group, overall, by_level = measures(counts, eligible, levels, sizes)
    total = int(sizes.sum())
    records = []
    for i, group in enumerate(groups):
        n = int(sizes[i])
        for metric in GROUP_METRICS:
            detail = {}
            if metric in ("impact_ratio", "scoring_impact_ratio") and not eligible[i]:
                detail["reason"] = (f"{n:,} of {total:,} rows ({n / total:.1%}) is under the "
                                    f"{impact_min_share:.0%} a bias audit may leave out (NYC LL144)")
            elif metric in ("impact_ratio", "scoring_impact_ratio") and not np.isfinite(per_group[metric][i]):
                rate = "selection" if metric == "impact_ratio" else "scoring"
                detail["reason"] = (f"every category's {rate} rate is 0 (or none has 2 % of the rows), so the "
                                    "ratio to the highest is undefined")
            records.append(MetricRecord("fairness", metric, feature, group, per_group[metric][i], n, detail=detail))
    for metric, value in overall.items():
        detail = {"groups": len(groups), "method": "between_groups",
                  "evidence": [{"min_rows": m, "groups": len(groups) - start, "value": _finite(level[metric])}
                               for (m, start), level in zip(levels, by_level)]}
        if not np.isfinite(value):
            detail["reason"] = f"{_RATES.get(metric, 'the rate')} is 0 in every group, so the ratio 0/0 is undefined"
        records.append(MetricRecord("fairness", metric, feature, None, float(value), total, detail=detail))
    for group in groups:
        mask = c["g"] == group
        records += calibration_records({k: v[mask] for k, v in c.items()}, feature=feature, group=group)
    return records


_RATES = {"demographic_parity_ratio": "the selection rate", "equal_opportunity_ratio": "the true positive rate",
          "equalized_odds_ratio": "the true or the false positive rate"}  # what a ratio's 0/0 divides


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None
