"""Typed results the service returns and the CLI and dashboard render."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from evaluation.compare import Difference
from governance.roles import Role
from policies.decision import GateDecision


# The states and answers the CLI's choices, the dashboard's menus and the service's checks share. Each is
# a str, so it compares equal to (and serialises as) its value.
class ItemStatus(StrEnum):
    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


class ItemKind(StrEnum):
    RULE_FAILURE = "rule_failure"  # a failed rule to look into
    EXAMPLE = "example"  # a sampled row whose label or prediction to judge
    DRIFT_ALERT = "drift_alert"  # a production batch drifted
    MONITOR_ALERT = "monitor_alert"  # a production batch broke a monitoring rule (an estimated metric)
    ESCALATION = "escalation"  # the retraining loop could not fix a rule: engineers decide
    GOLD = "gold"  # an admin's item with a known answer, measuring reviewers' accuracy
    OVERRIDE_EXPIRED = "override_expired"  # an admin override of a blocked gate ran out
    MANUAL = "manual"  # filed by hand (a hand-filed item may name a kind of its own)


class Priority(StrEnum):
    NORMAL = "normal"
    BLOCKING = "blocking"  # a retrain waits for it


class Verdict(StrEnum):
    """A reviewer's judgment of an item."""

    LABEL_CORRECT = "label_correct"
    LABEL_WRONG = "label_wrong"  # with a corrected label
    MODEL_WRONG = "model_wrong"
    AMBIGUOUS = "ambiguous"


class JobStatus(StrEnum):
    WAITING_REVIEW = "waiting_review"  # its blocking review items are still open
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class SignOffDecision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


class GateVerdict(StrEnum):
    PASSED = "passed"
    BLOCKED = "blocked"


def stored(kind: type[StrEnum], value: Any) -> Any:
    """`value` read from the store as `kind`; a value this version does not know stays as it was."""
    try:
        return kind(value)
    except ValueError:
        return value


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Record:
    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))  # type: ignore[call-overload]


@dataclass(frozen=True)
class User(Record):
    name: str
    role: Role
    has_password: bool
    created_at: datetime
    created_by: str | None
    disabled_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Model(Record):
    name: str
    owner: str | None
    description: str | None
    risk_tier: str
    created_at: datetime
    created_by: str
    min_approvals: int | None = None  # an admin's floor above the risk tier's, if any
    intended_use: str | None = None  # the inventory's intended use and known limitations (issue 20)
    limitations: str | None = None


@dataclass(frozen=True)
class Dataset(Record):
    sha256: str
    format: str
    row_count: int
    columns: dict[str, str]
    original_name: str | None

    @classmethod
    def from_row(cls, sha256: str, fmt: str, row_count: int, schema_json: str, original_name: str | None) -> "Dataset":
        return cls(sha256, fmt, row_count, json.loads(schema_json), original_name)


@dataclass(frozen=True)
class Version(Record):
    model: str
    version: str
    artifact_sha256: str
    training_data_sha256: str | None
    parent_version: str | None
    status: str
    created_at: datetime
    created_by: str
    lineage: dict[str, Any] | None = None  # for retrained versions: job, gate, failing rules, feedback, config


@dataclass(frozen=True)
class PredictionSet(Record):
    id: str
    model: str
    version: str
    split: str
    batch_time: datetime | None
    dataset_sha256: str
    source_name: str
    source_sha256: str
    row_count: int
    id_column: str | None
    label_column: str | None  # None: a production batch ingested without labels (they arrive by row id)
    score_column: str
    sensitive: list[str]
    features: list[str]
    created_at: datetime
    created_by: str
    intersections: list[list[str]] = field(default_factory=list)  # e.g. [["sex", "race"]], judged as "sex*race"


@dataclass(frozen=True)
class VersionDetail(Record):
    version: Version
    training_data: Dataset | None
    prediction_sets: list[PredictionSet] = field(default_factory=list)


@dataclass(frozen=True)
class StoreStatus(Record):
    home: str
    database: str
    migrations: list[str]
    users: int
    models: int
    versions: int
    prediction_sets: int
    audit_events: int
    audit_head: str | None
    witness: dict[str, Any] | None = None  # the live chain against the witnessed heads
    expired_overrides: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what `status` exits 1 for

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Evaluation(Record):
    """One immutable evaluation of a version's prediction set: its records live in metric_records."""

    id: str
    model: str
    version: str
    prediction_set_id: str
    reference_set_id: str | None
    engine: str
    params: dict[str, Any]
    records_sha256: str
    record_count: int
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class ReviewItem(Record):
    """Work for reviewers: a failed rule, a sampled example, a drift alert or a hand-filed item."""

    id: str
    model: str
    version: str
    kind: str  # an ItemKind, or a hand-filed item's own
    rule_id: str | None
    gate_decision_id: str | None
    priority: Priority
    status: ItemStatus
    judgments_required: int
    evidence: dict[str, Any]
    created_at: datetime
    created_by: str
    assignee: str | None = None
    claim_expires_at: datetime | None = None
    due_at: datetime | None = None
    is_gold: bool = False
    resolved_at: datetime | None = None
    # a gold item: how it shows itself to reviewers, as the examples it passes for (judgments, created_by,
    # created_at); None for other items
    shown: dict[str, Any] | None = None


@dataclass(frozen=True)
class Judgment(Record):
    item_id: str
    reviewer: str
    verdict: Verdict
    corrected_label: int | None
    comment: str
    judged_at: datetime


@dataclass(frozen=True)
class SignOff(Record):
    model: str
    version: str
    reviewer: str
    revision: int
    decision: SignOffDecision
    comment: str
    created_at: datetime
    # The evidence the decision binds to: an approval counts only for this artifact and evaluation.
    artifact_sha256: str | None = None
    evaluation_id: str | None = None
    gate_id: str | None = None
    acknowledged_blocked: bool = False  # signed off although the gate it saw was blocked


@dataclass(frozen=True)
class AliasMove(Record):
    """One move of a model's alias: a release, a rollback or an admin override (marked)."""

    model: str
    seq: int
    alias: str
    version: str
    previous_version: str | None
    action: str
    gate_id: str | None
    override_reason: str | None
    override_expires: datetime | None
    actor: str
    moved_at: datetime

    @property
    def expired(self) -> bool:
        """An override whose expiry has passed (it still holds production until someone moves it)."""
        return self.override_expires is not None and self.override_expires <= _utcnow()


@dataclass(frozen=True)
class Job(Record):
    """A retraining job queued by a gate failure."""

    id: str
    model: str
    version: str
    kind: str
    status: JobStatus
    strategies: list[str]
    failing_rules: list[str]
    depends_on: list[str]
    gate_decision_id: str
    attempts: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class JobDetail(Record):
    """A job with its lease, progress and outcome, and (when its search ran) what it aimed at and tried."""

    job: Job
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    progress: dict[str, Any] | None = None  # the running model's epoch and validation loss
    cancel_requested: bool = False
    error: str | None = None
    result_version: str | None = None
    searched: bool = False  # its search stored candidates
    candidates: list[dict[str, Any]] = field(default_factory=list)  # strategy, metrics, passes, chosen
    aim: dict[str, Any] = field(default_factory=dict)  # the policy's bounds it judged candidates by, per rule

    def __post_init__(self) -> None:
        if self.job.status.finished and self.progress is not None:  # a finished job's last heartbeat is stale:
            object.__setattr__(self, "progress", None)  # heartbeats come once a second, not at its end

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        return body.pop("job") | body  # one flat object, as `govern jobs show --json` prints it


@dataclass(frozen=True)
class JobRun(Record):
    """What a worker did with one job it claimed."""

    job: str
    status: str  # a JobStatus, or "abandoned" when its lease was lost to another worker
    version: str | None = None  # the version it published
    verdict: GateVerdict | None = None  # that version's gate
    blocked_by: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)  # retrains its gate queued
    escalations: list[str] = field(default_factory=list)  # review items for engineers when the loop stopped
    error: str | None = None


@dataclass(frozen=True)
class FeedbackSnapshot(Record):
    """A version of a model's feedback data set: the label corrections reviewers agreed on."""

    model: str
    version: int
    sha256: str
    corrections: int
    new: bool  # this call made it (the corrections changed since the last one)


@dataclass(frozen=True)
class GateRecord(Record):
    """A stored gate decision (every rule's result is in `decision`)."""

    id: str
    model: str
    version: str
    evaluation_id: str
    policy_name: str
    policy_version: str
    policy_sha256: str
    metrics_sha256: str
    verdict: GateVerdict
    decision: GateDecision
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class TrendPoint(Record):
    """One headline record of a version's latest evaluation, for charts across versions."""

    version: str
    version_created_at: datetime
    evaluation_id: str
    metric: str
    feature: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class Comparison(Record):
    """Two versions' latest evaluations side by side (`compare_versions`): B − A for every record they share,
    and the eval rows each evaluation read."""

    model: str
    a: str
    b: str
    differences: list[Difference]
    rows_a: int | None
    rows_b: int | None
    threshold_a: float | None = None
    threshold_b: float | None = None

    def threshold_note(self) -> str | None:
        """Where the two evaluations decided at different thresholds, a sentence saying the decision metrics'
        differences are mostly the thresholds'; else None."""
        if self.threshold_a is None or self.threshold_b is None or self.threshold_a == self.threshold_b:
            return None
        return (f"version {self.a} was evaluated at threshold {self.threshold_a:g} and version {self.b} at "
                f"{self.threshold_b:g}: differences in what depends on the decision (accuracy, precision, recall, F1, "
                "selection rates, parity and equalized-odds gaps) are largely the thresholds'; evaluate both at one "
                "threshold (`govern evaluate --threshold`) to compare the models.")

    def rows_note(self, where: str) -> str | None:
        """Where the two evaluations read different numbers of rows, a sentence saying what that means and
        `where` the retrained version's cost against its origin on its own rows is shown; else None."""
        if self.rows_a is None or self.rows_b is None or self.rows_a == self.rows_b:
            return None
        return (f"version {self.a} was evaluated on {self.rows_a:,} rows and version {self.b} on {self.rows_b:,}: "
                "the differences mix the models with the rows (a retrain moves the rows reviewers corrected, often "
                f"the hardest, into training); {where} shows a retrain's cost judged against its origin on its own "
                "rows.")


@dataclass(frozen=True)
class LabelArrival(Record):
    """Outcomes that arrived for a production batch, matched to its rows by id (`govern labels`)."""

    id: str
    prediction_set_id: str
    seq: int  # the batch's first arrival is 1
    source_name: str
    source_sha256: str
    dataset_sha256: str  # Parquet of (row_id, label), the rows labelled for the first time
    file_rows: int
    new_labels: int
    repeated: int  # rows the file labels again, as before
    labelled_total: int  # the batch's labelled rows after this arrival
    evaluation_id: str | None  # the batch's evaluation with the realised metrics it made
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class EstimatePoint(Record):
    """One estimated metric of a production batch beside its realised value (where labels arrived)."""

    prediction_set_id: str
    batch_time: datetime | None
    ingested_at: datetime
    evaluation_id: str
    metric: str  # as estimated: accuracy, roc_auc, true_positive_rate, equalized_odds_difference, ...
    feature: str | None
    group: str | None
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    rows: int
    realised: float | None = None
    labelled_rows: int = 0
    outside_band: bool | None = None  # the realised value fell outside [ci_low, ci_high]; None: nothing to compare

    def __post_init__(self) -> None:
        if self.outside_band is None and None not in (self.realised, self.ci_low, self.ci_high):
            object.__setattr__(self, "outside_band", not self.ci_low <= self.realised <= self.ci_high)  # type: ignore[operator]


@dataclass(frozen=True)
class DriftPoint(Record):
    """One drift record of a production batch's (latest) monitoring evaluation."""

    prediction_set_id: str
    batch_time: datetime | None
    ingested_at: datetime
    evaluation_id: str
    metric: str
    feature: str | None
    value: float | None
    method: str | None
