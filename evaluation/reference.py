"""Every metric recomputed with the reference libraries, keyed like the engine's records.

scikit-learn for performance, torchmetrics for calibration, fairlearn for fairness and Evidently
0.7 (ValueDrift, DriftedColumnsCount, its psi) for drift: the numbers the engine must equal
(docs/design.md, "Metric records"). Anyone can check a `govern metrics` result against them; the test
suite and benchmarks/reference_metrics.py do. Needs torchmetrics (the `test` extra), which the engine
itself does not.

    from evaluation.reference import classification_oracle
    expected = classification_oracle(y, p, 0.5)  # {(family, metric, feature, group): value}
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from evidently import Dataset, Report
from evidently.metrics import DriftedColumnsCount, ValueDrift
from fairlearn import metrics as fm
from sklearn import metrics as skm
from torchmetrics.functional.classification import binary_calibration_error
from torchmetrics.functional.classification.calibration_error import _binning_bucketize

Key = tuple[str, str, str | None, str | None]


def _ece(y: np.ndarray, p: np.ndarray, norm: str) -> float:
    return float(binary_calibration_error(torch.tensor(p, dtype=torch.float64), torch.tensor(y), n_bins=15, norm=norm))


def _reliability(y: np.ndarray, p: np.ndarray, feature: str | None, group: str | None) -> dict[Key, Any]:
    acc, conf, prop = _binning_bucketize(torch.tensor(p, dtype=torch.float64), torch.tensor(y),
                                         torch.linspace(0, 1, 16, dtype=torch.float64))
    out = {}
    for k in range(16):
        if prop[k] > 0:
            out[("calibration", f"reliability_bin[{k}]", feature, group)] = (float(acc[k]), float(conf[k]),
                                                                          round(float(prop[k]) * len(p)))
    return out


def classification_oracle(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[Key, Any]:
    pred = (p >= threshold).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: dict[Key, Any] = {
            ("performance", "accuracy", None, None): skm.accuracy_score(y, pred),
            ("performance", "precision", None, None): skm.precision_score(y, pred),
            ("performance", "recall", None, None): skm.recall_score(y, pred),
            ("performance", "f1", None, None): skm.f1_score(y, pred),
            ("performance", "log_loss", None, None): skm.log_loss(y, p, labels=[0, 1]),
            ("performance", "selection_rate", None, None): fm.selection_rate(y, pred),
            ("calibration", "brier_score", None, None): skm.brier_score_loss(y, p),
            ("calibration", "ece", None, None): _ece(y, p, "l1"),
            ("calibration", "mce", None, None): _ece(y, p, "max"),
        }
        try:
            out[("performance", "roc_auc", None, None)] = skm.roc_auc_score(y, p)
        except ValueError:
            out[("performance", "roc_auc", None, None)] = None
    out.update(_reliability(y, p, None, None))
    return out


def fairness_oracle(y: np.ndarray, p: np.ndarray, groups: pd.Series, feature: str, threshold: float) -> dict[Key, Any]:
    pred = (p >= threshold).astype(int)
    g = groups.astype(str).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = fm.MetricFrame(
            metrics={"count": fm.count, "selection_rate": fm.selection_rate,
                     "true_positive_rate": fm.true_positive_rate, "false_positive_rate": fm.false_positive_rate,
                     "accuracy": skm.accuracy_score},
            y_true=y, y_pred=pred, sensitive_features=g,
        )
        out: dict[Key, Any] = {}
        for group, row in frame.by_group.iterrows():
            for metric, value in row.items():
                out[("fairness", metric, feature, str(group))] = float(value)
        for name in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
                     "equalized_odds_ratio", "equal_opportunity_difference", "equal_opportunity_ratio"):
            value = getattr(fm, name)(y, pred, sensitive_features=g)
            out[("fairness", name, feature, None)] = None if math.isnan(value) else float(value)
    out.update(ll144_oracle(pred, p, g, feature))
    for group in np.unique(g):
        mask = g == group
        out[("calibration", "ece", feature, group)] = _ece(y[mask], p[mask], "l1")
        out[("calibration", "mce", feature, group)] = _ece(y[mask], p[mask], "max")
        out.update(_reliability(y[mask], p[mask], feature, group))
    return out


def ll144_oracle(pred: np.ndarray, p: np.ndarray, g: np.ndarray, feature: str,
                 min_share: float = 0.02) -> dict[Key, Any]:
    """NYC Local Law 144's bias-audit figures, computed as its rules describe them, with pandas: per
    category the selection rate and the scoring rate (share of the category scoring above the whole
    sample's median score), and each ÷ the highest category's; categories under `min_share` of the
    rows are left out (no impact ratio, not a candidate for the highest)."""
    frame = pd.DataFrame({"g": g, "selected": pred, "above": p > np.median(p)})
    table = frame.groupby("g").agg(n=("selected", "size"), selection_rate=("selected", "mean"),
                                   scoring_rate=("above", "mean"))
    kept = table[table["n"] / len(frame) >= min_share]
    out: dict[Key, Any] = {}
    for group, row in table.iterrows():
        out[("fairness", "scoring_rate", feature, str(group))] = float(row["scoring_rate"])
        for rate, ratio in (("selection_rate", "impact_ratio"), ("scoring_rate", "scoring_impact_ratio")):
            out[("fairness", ratio, feature, str(group))] = \
                float(row[rate] / kept[rate].max()) if group in kept.index else None
    return out


def drift_oracle(current: pd.DataFrame, reference: pd.DataFrame, columns: list[str],
                 share_columns: list[str]) -> dict[Key, Any]:
    """drift_score, method and drift_detected per column, psi per column, and the dataset share."""
    metrics = [ValueDrift(column=c) for c in columns] + [ValueDrift(column=c, method="psi") for c in columns]
    metrics.append(DriftedColumnsCount(columns=share_columns))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        snapshot = Report(metrics, include_tests=True).run(Dataset.from_pandas(current),
                                                            Dataset.from_pandas(reference)).dict()
    out: dict[Key, Any] = {}
    statuses = {t["metric_config"]["metric_id"]: t["status"] for t in snapshot["tests"]}
    for m in snapshot["metrics"]:
        config = m["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            out[("drift", "share_of_drifted_columns", None, None)] = m["value"]["share"]
            out[("drift", "dataset_drift", None, None)] = float(m["value"]["share"] >= 0.5)
        elif config["method"] in ("psi", "PSI"):
            out[("drift", "psi", config["column"], None)] = m["value"]
        else:
            out[("drift", "drift_score", config["column"], None)] = (m["value"], config["method"])
            out[("drift", "drift_detected", config["column"], None)] = float(statuses[m["id"]] == "FAIL")
    return out
