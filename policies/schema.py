"""Policy packs: a name, a version and rules, each rule of a registered kind that owns its schema.

    name: credit-default
    version: 3
    rules:
      - id: calibration-ece
        metric: calibration.ece
        max: 0.05
        on_fail: {review: {sample: 20, strategy: high_confidence_errors}, retrain: {strategy: recalibrate}}
      - {id: two-approvals, kind: approvals, min: 2}

A rule without `kind` is a metric rule. `policies/schema.json` is this module's JSON Schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator, model_validator

from evaluation.catalogue import METRICS

RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="Unique id of the rule.")]
Severity = Literal["block", "warn"]
# rows: more than any evaluation holds, so a rule asking this many can never judge (a pack had made a rule vanish
# with min_samples 9223372036854775807: always insufficient, which its pack counted as a pass)
MAX_MIN_SAMPLES = 1_000_000_000
ReviewStrategy = Literal["high_confidence_errors", "uncertain", "worst_group"]
RetrainStrategy = Literal["recalibrate", "reweight", "curriculum", "fairness_penalty"]


class Strict(BaseModel):
    # NaN and infinity are no bounds (a rule `max: .nan` could never pass nor mean anything); strict types:
    # `max: false` had been read as 0, `max: '0.05'` as 0.05 and `min_samples: true` as 1
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


class ReviewAction(Strict):
    """Review items to queue when the rule fails: one for the rule, plus sampled examples."""

    sample: int = Field(20, ge=0, le=10_000, description="How many example predictions to sample for review.")
    strategy: ReviewStrategy = Field("high_confidence_errors", description="How the examples are chosen.")
    judgments: int = Field(1, ge=1, le=10, description="Independent judgments each item needs.")


class RetrainAction(Strict):
    """A retraining job to queue when the rule fails."""

    strategy: list[RetrainStrategy] = Field(
        min_length=1, description="Strategy, or a list of strategies to combine (a single name is accepted).")
    max_rounds: StrictInt = Field(2, ge=1, le=20, description=(
        "Retrains per lineage before the loop stops and escalates to engineers instead."))

    @field_validator("strategy", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def strategies(self) -> list[str]:
        return list(self.strategy)


class OnFail(Strict):
    review: ReviewAction | None = None
    retrain: RetrainAction | None = None


class RuleBase(Strict):
    id: RuleId
    severity: Severity = Field("block", description="block stops the release; warn only reports.")
    description: str | None = Field(None, description="What the rule protects, in words.")
    serves: list[str] = Field(default_factory=list, description="Regulatory expectations the rule serves.")


class MetricRule(RuleBase):
    """A bound on one metric record: a threshold (max / min) or an allowed regression from a baseline."""

    kind: Literal["metric"] = "metric"
    metric: str = Field(description="family.metric, as in the metric records (e.g. calibration.ece).")
    feature: str | None = Field(
        None, description="The sensitive or drifting column, or every (each one the evaluation has).")
    group: str | None = Field(None, description="A group's value, or every / worst, for per-group metrics.")
    max: float | None = Field(None, description="Highest allowed value.")
    min: float | None = Field(None, description="Lowest allowed value.")
    max_regression: float | None = Field(None, ge=0, description="Largest allowed worsening against the baseline.")
    baseline: str = Field("production", description=(
        "production (the model's alias), challenger (the version's own challenger predictions: the logistic "
        "regression `govern train` fits, or an ingested --split challenger), origin (the version its "
        "retraining started from: its nearest ancestor no retraining job made; none for a version without a "
        "parent) or a version."))
    judge: Literal["point", "ci_upper", "ci_lower"] = Field(
        "point", description="Judge the point estimate or a bound of its confidence interval.")
    min_samples: int = Field(0, ge=0, le=MAX_MIN_SAMPLES, description=(
        "Below this many rows the evidence is insufficient. For a parity metric, groups with fewer rows are "
        "set aside (listed, and counted as `insufficient` says) and the gap is judged over the others."))
    min_share: float = Field(0.0, ge=0, lt=1, description=(
        "For per-group and parity metrics: groups under this share of the rows are set aside like groups "
        "under min_samples (NYC LL144 lets a bias audit leave out categories under 0.02)."))
    insufficient: Literal["warn", "block", "pass"] = Field(
        "warn", description="How insufficient evidence counts.")
    on_fail: OnFail | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            family = value.split(".")[0]
            near = [name for name in METRICS if name.startswith(family + ".")] or list(METRICS)
            raise ValueError(f"unknown metric {value!r}; known: {', '.join(near)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "MetricRule":
        spec = METRICS[self.metric]
        comparisons = [k for k in ("max", "min", "max_regression") if getattr(self, k) is not None]
        if len(comparisons) != 1:
            raise ValueError("give exactly one of max, min or max_regression")
        if self.max_regression is not None and spec.family == "estimated":
            raise ValueError(f"{self.metric} is a monitoring metric (judged per production batch): give max or min")
        if self.max_regression is not None and spec.better == "neither":
            raise ValueError(f"{self.metric} has no better direction, so max_regression cannot apply; use max or min")
        if "overall" in spec.scopes and self.feature is None:
            if self.group is not None:
                raise ValueError("group needs a feature")
        elif self.feature is None:
            raise ValueError(f"{self.metric} is reported per feature: name the feature")
        if "group" in spec.scopes and self.feature is not None and self.group is None:
            raise ValueError(f"{self.metric} is reported per group: give group (a value, every or worst)")
        if "group" not in spec.scopes and self.group is not None:
            raise ValueError(f"{self.metric} is not reported per group: remove group")
        if self.judge != "point" and not spec.has_interval:
            raise ValueError(f"{self.metric} has no confidence interval: judge must be point")
        if (self.judge, self.min is not None, self.max is not None) in (("ci_upper", True, False),
                                                                       ("ci_lower", False, True)):
            kind = "min" if self.min is not None else "max"
            right = "ci_lower" if kind == "min" else "ci_upper"
            raise ValueError(f"judge: {self.judge} on a {kind} rule judges the favourable bound, which is looser "
                             f"than the point estimate; use judge: {right} (or point)")
        # A bound no value can meet is a typo that blocks every release (`min: 2` for accuracy, `max: -5`): every
        # metric is 0 or more, and all but a few are shares, ratios or areas of at most 1.
        if self.max is not None and self.max < 0:
            raise ValueError(f"max {self.max:g} can never be met: {self.metric} is never below 0")
        if self.min is not None and self.min > 1 and self.metric not in UNBOUNDED_METRICS:
            raise ValueError(f"min {self.min:g} can never be met: {self.metric} is never above 1")
        if self.min_share and "group" not in spec.scopes and "feature" not in spec.scopes:
            raise ValueError(f"min_share sets groups aside; {self.metric} is not reported per group")
        return self


# metrics whose values may exceed 1 (every metric is 0 or more)
UNBOUNDED_METRICS = frozenset({"performance.log_loss", "drift.psi", "drift.drift_score", "fairness.count"})


class ApprovalsRule(RuleBase):
    """At least `min` distinct reviewers approved the version (sign-off)."""

    kind: Literal["approvals"]
    # no release gathers more: a larger `min` (9,223,372,036,854,775,807 once passed) blocks every release forever
    min: int = Field(ge=1, le=1000, description="Distinct approvals required, 1 to 1,000.")


class OpenReviewsRule(RuleBase):
    """At most `max` review items of the version are still open."""

    kind: Literal["open_reviews"]
    max: int = Field(0, ge=0, description="Open review items allowed.")


class LeakageRule(RuleBase):
    """The numbers are too good to be true: the eval ROC AUC reaches `max_auc`, or one column alone
    separates the label with a ROC AUC of `max_feature_auc` or more (named in the reason) — usually
    the outcome leaking into the features."""

    kind: Literal["leakage"]
    max_auc: StrictFloat = Field(0.99, gt=0.5, le=1, description="Eval ROC AUC at or above this is suspect.")
    max_feature_auc: StrictFloat = Field(0.98, gt=0.5, le=1, description=(
        "A single column whose own ROC AUC against the label reaches this is suspect."))


class DegenerateRule(RuleBase):
    """The decisions are (nearly) all one way: the selection rate overall or of any group with at
    least `min_samples` rows lies below `min_rate` or above `max_rate`."""

    kind: Literal["degenerate"]
    min_rate: float = Field(0.01, ge=0, lt=1, description="Lowest selection rate that is not degenerate.")
    max_rate: float = Field(0.99, gt=0, le=1, description="Highest selection rate that is not degenerate.")
    min_samples: int = Field(50, ge=0, le=MAX_MIN_SAMPLES,
                             description="Groups with fewer rows are not judged (listed instead).")

    @model_validator(mode="after")
    def _ordered(self) -> "DegenerateRule":
        if self.min_rate >= self.max_rate:
            raise ValueError("min_rate must be below max_rate")
        return self


RULE_KINDS: dict[str, type[RuleBase]] = {"metric": MetricRule, "approvals": ApprovalsRule,
                                         "open_reviews": OpenReviewsRule, "leakage": LeakageRule,
                                         "degenerate": DegenerateRule}
Rule = Union[MetricRule, ApprovalsRule, OpenReviewsRule, LeakageRule, DegenerateRule]


VERSION_LABEL = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class PolicyHeader(Strict):
    """A pack's name, version and description: checked apart from its rules, so that a pack with a bad rule
    hears of its bad name in the same answer."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    # a label the gate prints and the log keeps: letters, digits and . _ - (a U+202E had shown it backwards)
    version: Union[Annotated[int, Field(ge=1)], Annotated[str, Field(pattern=VERSION_LABEL)]]
    description: str | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_label(cls, value: object) -> object:
        if isinstance(value, str) and not re.fullmatch(VERSION_LABEL, value):
            raise ValueError("give a whole number, or a label of up to 64 letters, digits and . _ - starting with a "
                             "letter or digit")
        return value


class Policy(PolicyHeader):
    rules: list[Rule] = Field(min_length=1)


def json_schema() -> dict:
    """The published JSON Schema: a policy whose rules are one of the registered kinds."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(Policy).json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "govern policy pack"
    return schema

