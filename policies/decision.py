"""What a gate decides: one result per rule and the verdict. Plain data, light to import: the store reads
stored decisions back into these types without loading the gate's machinery."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping

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
    failing_groups: list[str] = field(default_factory=list)  # "feature=group" (or the feature) per failure
    # the same, structured: {"feature", "group", "value"}; and what was set aside: {"feature", "group", "n", "why"}
    failing: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> RuleResult:
        """A stored result; keys an older version did not write take their defaults, unknown ones are dropped."""
        return cls(**{key: value for key, value in body.items() if key in _RESULT_FIELDS})


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
    # the evaluation's settings the rules were judged under: the score at or above which a row counts as
    # selected (what recall, selection rates and parity depend on) and its rows; None in earlier decisions
    decision_threshold: float | None = None
    rows: int | None = None

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == "failed"]

    @property
    def cautions(self) -> list[RuleResult]:
        """What a gate flags without blocking: rules that warned, and rules with too little evidence to judge."""
        return [r for r in self.results if not r.blocking and r.status in ("warned", "insufficient")]

    def summary(self) -> str:
        blocking = [r.rule_id for r in self.results if r.blocking]
        warned = [r.rule_id for r in self.results if r.status == "warned" and not r.blocking]
        # whether too little evidence warns or passes is the rule's own line; here it is only named
        unjudged = [r.rule_id for r in self.results if r.status == "insufficient" and not r.blocking]
        text = f"gate {self.verdict.upper()} under {self.policy_name} v{self.policy_version}"
        if blocking:
            text += f": blocked by {', '.join(blocking)}"
        if warned:
            text += f"; warnings: {', '.join(warned)}"
        if unjudged:
            text += f"; too little evidence to judge: {', '.join(unjudged)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["results"] = [r.to_dict() for r in self.results]
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> GateDecision:
        """A decision as the store keeps it (its JSON body)."""
        return cls(verdict=body["verdict"], policy_name=body["policy_name"], policy_version=body["policy_version"],
                   policy_sha256=body["policy_sha256"], metrics_sha256=body["metrics_sha256"],
                   baseline=body.get("baseline"), mode=body.get("mode", "enforce"),
                   results=tuple(RuleResult.from_dict(r) for r in body.get("results", ())),
                   decision_threshold=body.get("decision_threshold"), rows=body.get("rows"))


_RESULT_FIELDS = {f.name for f in fields(RuleResult)}
