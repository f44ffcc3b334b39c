"""Performance and calibration from one pass over the predictions.

One GROUP BY yields "cells" (label × prediction × calibration bin × fine score step) with exact
counts and sums, from which every performance and calibration metric follows exactly (ROC AUC has
its own exact query), and the same cells drive the bootstrap (see bootstrap.py).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from evaluation.records import MetricRecord
from evaluation.sources import quote

N_BINS = 15
# torchmetrics' bin boundaries, torch.linspace(0, 1, 16, dtype=float64), bit for bit (a test pins
# them against torch). A score of exactly 1.0 lands in a 16th bin of its own, as in torchmetrics.
BIN_EDGES = tuple(float.fromhex(h) for h in (
    "0x0.0p+0", "0x1.1111111111111p-4", "0x1.1111111111111p-3", "0x1.999999999999ap-3", "0x1.1111111111111p-2",
    "0x1.5555555555555p-2", "0x1.999999999999ap-2", "0x1.ddddddddddddep-2", "0x1.1111111111111p-1",
    "0x1.3333333333333p-1", "0x1.5555555555555p-1", "0x1.7777777777778p-1", "0x1.999999999999ap-1",
    "0x1.bbbbbbbbbbbbcp-1", "0x1.ddddddddddddep-1", "0x1.0000000000000p+0",
))
# Fine score steps for the bootstrap's cells; see bootstrap.py for why this is sound.
SCORE_STEPS = 1024
EPS = float(np.finfo(np.float64).eps)  # scikit-learn's log_loss clip


def bin_expression(p: str) -> str:
    """torch.bucketize(p, edges, right=True) - 1: how many edges after the first are ≤ p."""
    return " + ".join(f"CAST({p} >= $edge{i} AS INTEGER)" for i in range(1, len(BIN_EDGES)))


def base_select(view: str, label: str, score: str, threshold: float, extra: str = "") -> tuple[str, dict]:
    """SELECT of the per-row quantities every classification query starts from."""
    y, p = quote(label), quote(score)
    sql = (
        f"SELECT CAST({y} AS INTEGER) AS y, CAST({p} AS DOUBLE) AS p, "
        f"CAST(CAST({p} AS DOUBLE) >= $threshold AS INTEGER) AS pred, ({bin_expression(f'CAST({p} AS DOUBLE)')}) AS bin, "
        f"CAST(floor(CAST({p} AS DOUBLE) * {SCORE_STEPS}) AS INTEGER) AS q{extra} FROM {view}"
    )
    return sql, {"threshold": threshold} | {f"edge{i}": BIN_EDGES[i] for i in range(1, len(BIN_EDGES))}


def cells(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str, threshold: float,
          group_column: str | None = None) -> pd.DataFrame:
    """Exact counts and sums per (group?, y, pred, bin, q)."""
    extra = f", CAST({quote(group_column)} AS VARCHAR) AS g" if group_column else ""
    base, params = base_select(view, label, score, threshold, extra)
    keys = ("g, " if group_column else "") + "y, pred, bin, q"
    sql = (
        f"SELECT {keys}, count(*) AS n, sum(p) AS sp, sum((y - p) * (y - p)) AS sse, "
        f"sum(-ln(greatest(least(CASE WHEN y = 1 THEN p ELSE 1 - p END, $upper), $lower))) AS sloss "
        f"FROM ({base}) GROUP BY {keys} ORDER BY {keys}"
    )
    return conn.execute(sql, params | {"upper": 1 - EPS, "lower": EPS}).df()


def roc_auc(conn: duckdb.DuckDBPyConnection, view: str, label: str, score: str) -> tuple[float | None, str | None]:
    """Mann-Whitney form of the ROC AUC with ties counted half: scikit-learn's value exactly."""
    y, p = quote(label), quote(score)
    pos, neg, above = conn.execute(
        f"""
        WITH by_score AS (
            SELECT CAST({p} AS DOUBLE) AS p, CAST(count(*) FILTER ({y} = 1) AS HUGEINT) AS pos,
                   CAST(count(*) FILTER ({y} = 0) AS HUGEINT) AS neg
            FROM {view} GROUP BY 1),
        ranked AS (
            SELECT pos, neg, coalesce(sum(neg) OVER (ORDER BY p ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                   AS neg_below FROM by_score)
        SELECT sum(pos), sum(neg), sum(2 * pos * neg_below + pos * neg) FROM ranked
        """
    ).fetchone()
    if not pos or not neg:
        return None, "only one class is present in the labels, so ROC AUC is undefined"
    return float(above) / (2.0 * float(pos) * float(neg)), None


def confusion(frame: pd.DataFrame) -> tuple[float, float, float, float]:
    """(tp, fp, tn, fn) from cells or from resampled counts with the same columns."""
    n = frame["n"]
    tp = n[(frame["y"] == 1) & (frame["pred"] == 1)].sum()
    fp = n[(frame["y"] == 0) & (frame["pred"] == 1)].sum()
    tn = n[(frame["y"] == 0) & (frame["pred"] == 0)].sum()
    fn = n[(frame["y"] == 1) & (frame["pred"] == 0)].sum()
    return float(tp), float(fp), float(tn), float(fn)


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


def calibration_bins(frame: pd.DataFrame) -> pd.DataFrame:
    """Per calibration bin: count, positives, sum of scores (from cells)."""
    frame = frame.assign(pos=frame["n"] * frame["y"])
    return frame.groupby("bin", as_index=False).agg(n=("n", "sum"), pos=("pos", "sum"), sp=("sp", "sum"))


def calibration_errors(bins: pd.DataFrame) -> tuple[float, float]:
    """(ece, mce) as torchmetrics computes them from binned sums."""
    total = bins["n"].sum()
    gap = (bins["pos"] / bins["n"] - bins["sp"] / bins["n"]).abs()
    return float((gap * bins["n"] / total).sum()), float(gap.max())


def performance_records(frame: pd.DataFrame, auc: float | None, auc_reason: str | None) -> list[MetricRecord]:
    n = int(frame["n"].sum())
    values = performance_values(*confusion(frame))
    records = [MetricRecord("performance", name, None, None, value, n) for name, value in values.items()]
    records.append(MetricRecord("performance", "roc_auc", None, None, auc, n,
                                detail={"reason": auc_reason} if auc_reason else {}))
    records.append(MetricRecord("performance", "log_loss", None, None, frame["sloss"].sum() / n, n))
    return records


def calibration_records(frame: pd.DataFrame, feature: str | None = None, group: str | None = None) -> list[MetricRecord]:
    """brier_score (overall only), ece, mce and the reliability bins, for all rows or one group."""
    n = int(frame["n"].sum())
    bins = calibration_bins(frame)
    ece, mce = calibration_errors(bins)
    records = []
    if feature is None:
        records.append(MetricRecord("calibration", "brier_score", None, None, frame["sse"].sum() / n, n))
    records += [
        MetricRecord("calibration", "ece", feature, group, ece, n, detail={"n_bins": N_BINS, "norm": "l1"}),
        MetricRecord("calibration", "mce", feature, group, mce, n, detail={"n_bins": N_BINS, "norm": "max"}),
    ]
    for row in bins.itertuples():
        k = int(row.bin)
        records.append(MetricRecord(
            "calibration", "reliability_bin", feature, group, row.pos / row.n, row.n,
            detail={"bin": k, "lower": BIN_EDGES[k], "upper": BIN_EDGES[k + 1] if k < N_BINS else 1.0,
                    "mean_score": row.sp / row.n},
        ))
    return records
