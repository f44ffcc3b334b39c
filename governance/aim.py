"""What a retraining search aims at: a policy's blocking rules that a model can change, judged on rows
the candidate never trained on, each rule in its own judge mode.

Drift rules (the data, not the model), approvals and open reviews (people's work) are left out;
so are rules on columns the rows do not carry. Regression rules compare with the gate's own baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from evaluation import MetricSet, evaluate
from policies.gate import RuleResult, run_gate
from policies.loader import LoadedPolicy
from policies.schema import MetricRule
from training.search import Verdict

SCORE = "__govern_candidate_score"
CI_RESAMPLES = 200  # when a rule judges a confidence bound


@dataclass(frozen=True)
class Aim:
    policy: LoadedPolicy  # the binding pack with only the rules a candidate is judged by
    policy_name: str
    baselines: Mapping[str, tuple[str, MetricSet] | None]
    label: str
    sensitive: tuple[str, ...]
    threshold: float
    flagged: tuple[str, ...]  # the rules whose failure queued the job
    offsets_for: tuple[str, ...]  # sensitive columns of flagged fairness rules: where group offsets may help
    resamples: int

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.policy.policy.rules]

    def bounds(self) -> dict[str, dict]:
        """Each judged rule's metric, column and bound, by rule id (what a trade-off chart draws)."""
        return {r.id: {"metric": r.metric, "feature": r.feature, "max": r.max, "min": r.min,
                       "max_regression": r.max_regression, "judge": r.judge, "flagged": r.id in self.flagged}
                for r in self.policy.policy.rules}

    @classmethod
    def of(cls, loaded: LoadedPolicy, baselines: Mapping[str, tuple[str, MetricSet] | None], *, label: str,
           sensitive: Sequence[str], threshold: float, flagged: Sequence[str]) -> "Aim":
        def judgeable(rule) -> bool:
            return (isinstance(rule, MetricRule) and rule.severity == "block" and not rule.metric.startswith("drift.")
                    and (rule.feature in (None, "every") or rule.feature in sensitive))

        rules = [r for r in loaded.policy.rules if judgeable(r)]
        subset = LoadedPolicy(loaded.policy.model_copy(update={"rules": rules}), loaded.sha256, loaded.text,
                              loaded.source, dict(loaded.lines))
        fairness = [r for r in rules if r.id in flagged and r.metric.startswith("fairness.")]
        columns = [c for c in sensitive if any(r.feature in ("every", c) for r in fairness)]
        return cls(subset, loaded.policy.name, baselines, label, tuple(sensitive), threshold, tuple(flagged),
                   tuple(columns), CI_RESAMPLES if any(r.judge != "point" for r in rules) else 0)

    def judge(self, rows: pd.DataFrame, scores: np.ndarray) -> Verdict:
        frame = rows[[self.label, *self.sensitive]].copy()
        frame[SCORE] = scores
        metric_set = evaluate(current=frame, label=self.label, score=SCORE, sensitive=list(self.sensitive),
                              threshold=self.threshold, resamples=self.resamples, seed=0)
        metrics: dict[str, float | None] = {
            name: _value(metric_set, family, name) for family, name in
            (("performance", "accuracy"), ("performance", "roc_auc"), ("calibration", "ece"))}
        if not self.policy.policy.rules:
            return Verdict(True, 0.0, metrics)
        decision = run_gate(policy=self.policy, metrics=metric_set, baseline=self.baselines)
        for result in decision.results:
            metrics[result.rule_id] = result.judged if result.judged is not None else result.observed
        blocking = [r for r in decision.results if r.blocking]
        return Verdict(not blocking, sum(_shortfall(r) for r in blocking), metrics,
                       [f"{r.rule_id}: {r.reason}" for r in blocking])


def _value(metric_set: MetricSet, family: str, metric: str) -> float | None:
    record = metric_set.find(family, metric)
    return None if record is None or record.value is None else float(record.value)


def _shortfall(result: RuleResult) -> float:
    """How far a blocking result is from passing, relative to its bound (1 when it cannot be measured)."""
    if result.status != "failed" or result.judged is None or result.threshold is None:
        return 1.0
    if result.comparison == "max_regression":
        if result.baseline_value is None:
            return 1.0
        worsening = abs(result.judged - result.baseline_value)
        return max(0.0, worsening - result.threshold) / max(result.threshold, 0.01)
    gap = abs(result.judged - result.threshold)
    return gap / max(abs(result.threshold), 0.01) if math.isfinite(gap) else 1.0
