"""The release gate: a pure function of (policy, metrics, baseline metrics, review state) → decision.

One result per rule — passed, failed, warned or insufficient — with the observed value, the bound
judged, the threshold and one sentence a reviewer can read. Same inputs, same decision.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping

from evaluation import MetricRecord, MetricSet
from evaluation.catalogue import METRICS
from policies.errors import PolicyInvalid
from policies.loader import LoadedPolicy
from policies.schema import ApprovalsRule, MetricRule, OpenReviewsRule

Status = Literal["passed", "failed", "warned", "insufficient"]


@dataclass(frozen=True)
class ReviewState:
    """What the gate needs to know of people's work on the version."""

    approvals: int = 0
    rejections: int = 0
    open_items: int = 0


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    kind: str
    status: Status
    blocking: bool
    severity: str
    reason: str
    metric: str | None = None
    feature: str | None = None
    group: str | None = None
    observed: float | None = None
    judged: float | None = None
    bound: str | None = None
    threshold: float | None = None
    comparison: str | None = None
    baseline_value: float | None = None
    n: int | None = None
    failing_groups: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    verdict: Literal["passed", "blocked"]
    policy_name: str
    policy_version: str
    policy_sha256: str
    metrics_sha256: str
    baseline: str | None
    results: tuple[RuleResult, ...]
    mode: Literal["enforce", "dry_run"] = "enforce"

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "failed"]

    def summary(self) -> str:
        blocking = [r.rule_id for r in self.results if r.blocking]
        warned = [r.rule_id for r in self.results if r.status in ("warned", "insufficient") and not r.blocking]
        text = f"gate {self.verdict.upper()} under {self.policy_name} v{self.policy_version}"
        if blocking:
            text += f": blocked by {', '.join(blocking)}"
        if warned:
            text += f"; warnings: {', '.join(warned)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["results"] = [r.to_dict() for r in self.results]
        return body


def run_gate(*, policy: LoadedPolicy, metrics: MetricSet,
             baseline: Mapping[str, tuple[str, MetricSet] | None] | None = None,
             reviews: ReviewState = ReviewState(), mode: Literal["enforce", "dry_run"] = "enforce") -> GateDecision:
    """Judge every rule of `policy` and return the decision (verdict blocked if any result blocks).

    `baseline` maps each regression rule's `baseline` (production, or a version) to (a label such
    as "production, version 3", its metrics), or None where there is none. Raises PolicyInvalid
    when a rule names a feature or group the evaluation does not have (naming rule and line).
    """
    baseline = baseline or {}
    results = []
    for rule in policy.policy.rules:
        if isinstance(rule, MetricRule):
            results.append(_metric_rule(rule, policy, metrics, baseline.get(rule.baseline)))
        elif isinstance(rule, ApprovalsRule):
            ok = reviews.approvals >= rule.min and reviews.rejections == 0
            reason = f"{reviews.approvals} of {rule.min} required approvals"
            reason += f", and {reviews.rejections} rejection(s) stand" if reviews.rejections else ""
            results.append(_outcome(rule, ok, reason + ".", observed=reviews.approvals, threshold=rule.min,
                                    comparison=">="))
        elif isinstance(rule, OpenReviewsRule):
            ok = reviews.open_items <= rule.max
            results.append(_outcome(rule, ok, f"{reviews.open_items} review item(s) open; at most {rule.max} allowed.",
                                    observed=reviews.open_items, threshold=rule.max, comparison="<="))
    blocked = any(r.blocking for r in results)
    labels = sorted(entry[0] for entry in baseline.values() if entry is not None)
    return GateDecision("blocked" if blocked else "passed", policy.policy.name, str(policy.policy.version),
                        policy.sha256, metrics.sha256(), ", ".join(labels) or None, tuple(results), mode)


def _outcome(rule, ok: bool, reason: str, **values: Any) -> RuleResult:
    status: Status = "passed" if ok else ("failed" if rule.severity == "block" else "warned")
    return RuleResult(rule.id, rule.kind, status, status == "failed", rule.severity, reason, **values)


def _pretty(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.4g}"


def _records(rule: MetricRule, policy: LoadedPolicy, metrics: MetricSet) -> list[MetricRecord]:
    family, metric = rule.metric.split(".")
    found = [r for r in metrics.records if r.family == family and r.metric == metric
             and (r.feature == rule.feature or (rule.feature == "every" and r.feature is not None))]
    if rule.group in (None, "every", "worst"):
        found = [r for r in found if (r.group is None) == (rule.group is None)]
    else:
        found = [r for r in found if r.group == rule.group]
    if not found:
        where = f" for feature {rule.feature!r}" if rule.feature else ""
        where += f" and group {rule.group!r}" if rule.group not in (None, "every", "worst") else ""
        raise PolicyInvalid(f"rule {rule.id!r} (line {policy.line_of(rule.id)}): the evaluation has no "
                            f"{rule.metric}{where}; evaluate with that sensitive or feature column, or fix the rule.")
    return found


def _judged(record: MetricRecord, judge: str) -> float | None:
    if judge == "ci_upper":
        return record.ci_high if record.ci_high is not None else record.value
    if judge == "ci_lower":
        return record.ci_low if record.ci_low is not None else record.value
    return record.value


def _metric_rule(rule: MetricRule, policy: LoadedPolicy, metrics: MetricSet,
                 baseline: tuple[str, MetricSet] | None) -> RuleResult:
    records = _records(rule, policy, metrics)
    spec = METRICS[rule.metric]
    common = dict(metric=rule.metric, feature=rule.feature, bound=rule.judge)
    if rule.max_regression is not None:
        return _regression(rule, records[0], baseline, common)
    limit, comparison = (rule.max, "<=") if rule.max is not None else (rule.min, ">=")
    passes = (lambda v: v <= limit) if comparison == "<=" else (lambda v: v >= limit)
    samples = _samples(rule, records, metrics)
    judged = []
    for record in records:
        value, n = _judged(record, rule.judge), samples(record)
        judged.append((record, value, n))
    sufficient = [(r, v, n) for r, v, n in judged if v is not None and n >= rule.min_samples]
    insufficient = [(r, v, n) for r, v, n in judged if (r, v, n) not in sufficient]
    label = rule.metric.split(".")[1].replace("_", " ")
    bound_words = {"point": "", "ci_upper": " (upper confidence bound)", "ci_lower": " (lower confidence bound)"}[rule.judge]
    if rule.group in ("every", "worst") or rule.feature == "every":
        return _groups(rule, label, bound_words, sufficient, insufficient, limit, comparison, passes, spec, common)
    record, value, n = judged[0]
    if (record, value, n) in insufficient:
        why = (record.detail.get("reason") or "the value is undefined") if value is None else \
            f"only {n} rows (minimum {rule.min_samples})"
        return _insufficient(rule, f"{label}{_where(rule)}: {why}; insufficient evidence.", record, common)
    ok = passes(value)
    relation = ("within the maximum" if comparison == "<=" else "at or above the minimum") if ok else \
        ("above the maximum" if comparison == "<=" else "below the minimum")
    reason = f"{label}{_where(rule)} is {_pretty(value)}{bound_words}, {relation} {_pretty(limit)}."
    return _outcome(rule, ok, reason, observed=record.value, judged=value, threshold=limit, comparison=comparison,
                    n=record.n, group=record.group, **common)


def _where(rule: MetricRule) -> str:
    if rule.feature and rule.group not in (None, "every", "worst"):
        return f" for {rule.feature}={rule.group}"
    return f" for {rule.feature}" if rule.feature else ""


def _samples(rule: MetricRule, records: list[MetricRecord], metrics: MetricSet):
    """Rows behind a record; for a parity metric, the smallest group's rows."""
    def count(record: MetricRecord) -> int:
        if record.family == "fairness" and record.group is None:
            sizes = [r.n for r in metrics.select("fairness", "count", record.feature)]
            return min(sizes) if sizes else record.n
        return record.n
    return count


def _insufficient(rule: MetricRule, reason: str, record: MetricRecord | None, common: dict) -> RuleResult:
    treat = {"warn": "counts as a warning", "block": "blocks the release", "pass": "is let pass"}[rule.insufficient]
    return RuleResult(rule.id, rule.kind, "insufficient", rule.insufficient == "block", rule.severity,
                      f"{reason} The policy says this {treat}.",
                      observed=record.value if record else None, n=record.n if record else None,
                      group=record.group if record else None, **common)


def _name(record: MetricRecord) -> str:
    return f"{record.feature}={record.group}" if record.group is not None else str(record.feature)


def _groups(rule, label, bound_words, sufficient, insufficient, limit, comparison, passes, spec, common) -> RuleResult:
    """Rules over several records: every (or the worst) group, and/or every feature."""
    scope = "every sensitive column" if rule.feature == "every" else f"every group of {rule.feature}"
    if not sufficient:
        return _insufficient(rule, f"nothing in {scope} has {rule.min_samples} rows or a defined {label};"
                                   " insufficient evidence.", None, common)
    pick_max = comparison == "<="
    worst_record, worst_value, _ = max(sufficient, key=lambda t: t[1]) if pick_max else min(sufficient, key=lambda t: t[1])
    failing = [(r, v) for r, v, _ in sufficient if not passes(v)]
    considered = [(worst_record, worst_value, 0)] if rule.group == "worst" else sufficient
    ok = all(passes(v) for _, v, _ in considered)
    names = ", ".join(_name(r) for r, _, _ in insufficient[:5]) + (", …" if len(insufficient) > 5 else "")
    skipped = f" (not judged, too few rows or undefined: {names})" if insufficient else ""
    if rule.group == "worst":
        failing = [(worst_record, worst_value)] if not ok else []
    if ok:
        relation = "within the maximum" if pick_max else "at or above the minimum"
        reason = (f"{label}{bound_words} is {relation} {_pretty(limit)} in {scope}; the worst, "
                  f"{_name(worst_record)}, is {_pretty(worst_value)}{skipped}.")
    else:
        shown = ", ".join(f"{_name(r)} {_pretty(v)}" for r, v in failing[:5])
        side = "above the maximum" if pick_max else "below the minimum"
        reason = f"{label}{bound_words} is {side} {_pretty(limit)} in {len(failing)} of {len(sufficient)} " \
                 f"({scope}): {shown}{skipped}."
    return _outcome(rule, ok, reason, observed=worst_record.value, judged=worst_value, threshold=limit,
                    comparison=comparison, n=worst_record.n, group=worst_record.group,
                    failing_groups=[_name(r) for r, _ in failing], **{**common, "feature": worst_record.feature})


def _regression(rule: MetricRule, record: MetricRecord, baseline: tuple[str, MetricSet] | None,
                common: dict) -> RuleResult:
    label = rule.metric.split(".")[1].replace("_", " ")
    if baseline is None:
        return _insufficient(rule, f"there is no evaluated baseline ({rule.baseline}) to compare {label} with;"
                                   " insufficient evidence.", record, common)
    baseline_label, baseline_metrics = baseline
    family, metric = rule.metric.split(".")
    base = baseline_metrics.find(family, metric, rule.feature, rule.group if rule.group not in ("every", "worst") else None)
    current = _judged(record, rule.judge)
    if base is None or base.value is None or current is None:
        return _insufficient(rule, f"{label} is undefined here or in the baseline; insufficient evidence.", record,
                             common)
    better = METRICS[rule.metric].better
    worsening = (base.value - current) if better == "higher" else (current - base.value)
    ok = worsening <= rule.max_regression + 1e-12
    direction = "below" if better == "higher" else "above"
    reason = (f"{label} is {_pretty(current)}, {_pretty(abs(worsening))} {direction if worsening > 0 else 'better than'} "
              f"the baseline {_pretty(base.value)} ({baseline_label}); at most {_pretty(rule.max_regression)} "
              f"worse is allowed.")
    return _outcome(rule, ok, reason, observed=record.value, judged=current, threshold=rule.max_regression,
                    comparison="max_regression", baseline_value=base.value, n=record.n, **common)
