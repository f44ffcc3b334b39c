"""Which metrics the engine reports, at what scope, and which direction is better.

Policies validate rule names against this, and the gate uses `better` to read regressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["overall", "group", "feature"]  # one value / one per (feature, group) / one per feature


@dataclass(frozen=True)
class MetricSpec:
    family: str
    metric: str
    scopes: tuple[Scope, ...]
    better: Literal["higher", "lower", "neither"]
    has_interval: bool = False

    @property
    def name(self) -> str:
        return f"{self.family}.{self.metric}"


def _specs() -> dict[str, MetricSpec]:
    specs = [
        *(MetricSpec("performance", m, ("overall",), "higher", True)
          for m in ("accuracy", "precision", "recall", "f1", "roc_auc")),
        MetricSpec("performance", "log_loss", ("overall",), "lower", True),
        MetricSpec("calibration", "brier_score", ("overall",), "lower", True),
        MetricSpec("calibration", "ece", ("overall", "group"), "lower", True),
        MetricSpec("calibration", "mce", ("overall", "group"), "lower", True),
        MetricSpec("fairness", "count", ("group",), "neither"),
        MetricSpec("fairness", "selection_rate", ("group",), "neither", True),
        MetricSpec("fairness", "true_positive_rate", ("group",), "higher", True),
        MetricSpec("fairness", "false_positive_rate", ("group",), "lower", True),
        MetricSpec("fairness", "accuracy", ("group",), "higher", True),
        MetricSpec("performance", "selection_rate", ("overall",), "neither"),
        MetricSpec("fairness", "scoring_rate", ("group",), "neither", True),
        MetricSpec("fairness", "impact_ratio", ("group",), "higher", True),
        MetricSpec("fairness", "scoring_impact_ratio", ("group",), "higher", True),
        MetricSpec("sanity", "feature_auc", ("feature",), "lower"),
        *(MetricSpec("fairness", f"{m}_difference", ("feature",), "lower", True)
          for m in ("demographic_parity", "equalized_odds", "equal_opportunity")),
        *(MetricSpec("fairness", f"{m}_ratio", ("feature",), "higher", True)
          for m in ("demographic_parity", "equalized_odds", "equal_opportunity")),
        MetricSpec("drift", "drift_score", ("feature",), "neither"),
        MetricSpec("drift", "drift_detected", ("feature",), "lower"),
        MetricSpec("drift", "psi", ("feature",), "lower"),
        MetricSpec("drift", "share_of_drifted_columns", ("overall",), "lower"),
        MetricSpec("drift", "dataset_drift", ("overall",), "lower"),
        # estimated without labels on production batches (evaluation.estimation): monitoring rules
        *(MetricSpec("estimated", m, ("overall", "group"), "higher", True)
          for m in ("accuracy", "precision", "recall", "f1", "roc_auc", "true_positive_rate")),
        MetricSpec("estimated", "false_positive_rate", ("overall", "group"), "lower", True),
        *(MetricSpec("estimated", m, ("feature",), "lower", True)
          for m in ("equalized_odds_difference", "equal_opportunity_difference")),
    ]
    return {spec.name: spec for spec in specs}


METRICS: dict[str, MetricSpec] = _specs()
