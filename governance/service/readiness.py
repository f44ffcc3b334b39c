"""Release readiness at a glance: per model, what is in production and on what, whether its latest binding
gate found it fit and if not what failed where, the gated metrics across versions against their bounds, and
per user what waits for them (the Overview page and `govern readiness` render this)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

import duckdb

from governance.errors import NotAllowed, NotFound
from governance.records import (
    AliasMove,
    GateRecord,
    GateVerdict,
    ItemKind,
    ItemStatus,
    Job,
    JobStatus,
    Record,
    ReviewItem,
    SignOffDecision,
    User,
)
from governance.roles import Action, Role, allowed
from governance.service.base import _now
from governance.service.policies import assigned_pack
from governance.service.releases import ReleaseActions, _blocking_rules, _check_releasable
from governance.service.reviews import _as_seen_by
from governance.store import aliases, evaluations, gates, jobs, judgments, registry, review_items, signoffs
from policies.decision import RuleResult

if TYPE_CHECKING:
    from policies.loader import LoadedPolicy

ACTIVE_JOBS = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.WAITING_REVIEW)
REVIEWERS_WORK = {ItemKind.ESCALATION, ItemKind.OVERRIDE_EXPIRED}  # kinds reviewers do NOT work (the rest they do)
EXPIRING_SOON = timedelta(days=7)
AWAITING_SIGNOFF = "awaiting sign-off"


@dataclass(frozen=True)
class Finding(Record):
    """A rule of the latest binding gate that did not pass: where and by how much."""

    rule_id: str
    status: str  # failed, warned or insufficient
    blocking: bool
    metric: str | None
    comparison: str | None
    threshold: float | None
    observed: float | None
    where: list[str]  # "RAC1P 0.218", "SEX*RAC1P=1 & 2 0.752": each failing column or group with its value
    reason: str
    baseline: float | None = None  # a regression rule's baseline value

    def sentence(self) -> str:
        """'parity-gap: fairness.demographic_parity_difference RAC1P 0.218, SEX*RAC1P 0.137 (must be at most 0.1)'.
        A rule without enough evidence gives its reason: the value it would have judged is not what failed."""
        if self.status == "insufficient":
            return f"{self.rule_id}: {self.reason}"
        bound = f" ({_bound_words(self.comparison, self.threshold)})" if self.threshold is not None else ""
        if self.where:
            return f"{self.rule_id}: {self.metric or 'rule'} {', '.join(self.where)}{bound}"
        if self.observed is not None and self.metric:
            if self.comparison == "max_regression" and self.baseline is not None:
                return (f"{self.rule_id}: {self.metric} {self.observed:.3g}, {self.baseline - self.observed:.3g} below "
                        f"its baseline's {self.baseline:.3g}{bound}")
            return f"{self.rule_id}: {self.metric} {self.observed:.3g}{bound}"
        return f"{self.rule_id}: {self.reason}"


@dataclass(frozen=True)
class GatedPoint(Record):
    """What one version's latest gate judged for a metric rule: the worst column or group's value, the bound
    and the rule's status then."""

    rule_id: str
    metric: str  # "family.metric"
    feature: str | None
    group: str | None
    version: str
    value: float | None
    ci_low: float | None  # the record's interval, when the judged value is the record's own
    ci_high: float | None
    threshold: float
    comparison: str
    status: str


@dataclass(frozen=True)
class ModelReadiness(Record):
    model: str
    risk_tier: str
    versions: int
    latest_version: str | None
    production: AliasMove | None  # the move production rests on (a release or an admin's override)
    production_verdict: str | None  # the production version's latest gate verdict, if gated
    gated_version: str | None  # the version of the latest binding gate
    verdict: str  # passed, awaiting sign-off (blocked only by approval rules), blocked, not gated, no versions
    policy: str | None  # "default v3"
    gated_at: datetime | None
    findings: list[Finding]  # failed first, then warned, then insufficient
    trend: list[GatedPoint]
    open_items: int
    active_jobs: int
    latest_version_verdict: str | None = None  # the newest version's own latest gate verdict, where it has one

    @property
    def summary(self) -> str:
        """The verdict in words: what is fit, what failed and where."""
        if self.verdict == "no versions":
            return "no versions yet"
        if self.gated_version is None:
            return f"v{self.latest_version} not gated yet (a binding `govern gate` stores a decision; dry runs do not)"
        blocking = [f.sentence() for f in self.findings if f.blocking and self.verdict != AWAITING_SIGNOFF]
        text = f"v{self.gated_version} {self.verdict.upper()} under {self.policy}"
        if self.verdict == AWAITING_SIGNOFF:
            text = f"v{self.gated_version} passed every rule of {self.policy} but its approvals"
        if blocking:
            text += ": " + "; ".join(blocking)
        if self.latest_version != self.gated_version and self.latest_version_verdict is not None:
            # an older version gated since (evaluated again at another threshold, say): not "not gated yet"
            text += f" (v{self.latest_version}, newer, was gated before it: {self.latest_version_verdict})"
        elif self.latest_version != self.gated_version:
            text += f" (v{self.latest_version} not gated yet)"
        return text


@dataclass(frozen=True)
class Task(Record):
    """Something waiting for the signed-in user."""

    kind: str  # judge, claimed, sign_off, release, escalation, decide, override, failed_job
    model: str
    version: str
    count: int
    text: str


@dataclass(frozen=True)
class Readiness(Record):
    user: str
    role: str
    models: list[ModelReadiness]
    needs_you: list[Task]
    as_of: datetime


class ReadinessActions(ReleaseActions):
    def readiness(self) -> Readiness:
        """Every model's release readiness, and what waits for the acting user (by their role)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> Readiness:
            user = self._authorize(conn, Action.VIEW)
            production = {m.model: m for m in self._production_bases(conn)}
            items = review_items.list_items(conn)
            if user.role is Role.REVIEWER:  # counted as their queue shows them (gold items as examples)
                judged = judgments.judgment_times(conn, user.name)
                items = [_as_seen_by(item, user, judged) for item in items]
            active = [j for j in jobs.list_jobs(conn) if j.status in ACTIVE_JOBS]
            models = [_model_readiness(conn, model.name, model.risk_tier, production.get(model.name), items, active)
                      for model in registry.list_models(conn)]
            return Readiness(user.name, user.role.value, models,
                             _tasks(conn, user, models, items, lambda model: assigned_pack(conn, model).loaded,
                                    (self._auth or {}).get("token")),
                             _now())

        return self._run(unit)


def _model_readiness(conn: duckdb.DuckDBPyConnection, model: str, risk_tier: str, production: AliasMove | None,
                     items: list[ReviewItem], active: list[Job]) -> ModelReadiness:
    versions = registry.list_versions(conn, model)
    latest_gates = gates.latest_gates(conn, model)
    gate = latest_gates[-1] if latest_gates else None
    by_version = {g.version: g for g in latest_gates}
    production_gate = by_version.get(production.version) if production else None
    open_items = sum(1 for i in items if i.model == model and i.status in (ItemStatus.OPEN, ItemStatus.CLAIMED)
                     and i.kind != ItemKind.GOLD)  # gold items measure reviewers, not the model (count_open_items)
    verdict = "no versions" if not versions else "not gated" if gate is None else _verdict(gate)
    return ModelReadiness(
        model, risk_tier, len(versions), versions[-1].version if versions else None, production,
        str(production_gate.verdict) if production_gate else None, gate.version if gate else None, verdict,
        f"{gate.policy_name} v{gate.policy_version}" if gate else None, gate.created_at if gate else None,
        _findings(gate) if gate else [],
        _trend(conn, model, latest_gates, [v.version for v in versions]) if gate else [], open_items,
        sum(1 for j in active if j.model == model),
        _verdict(by_version[versions[-1].version]) if versions and versions[-1].version in by_version else None)


def _verdict(gate: GateRecord) -> str:
    if gate.verdict == GateVerdict.PASSED:
        return "passed"
    return "blocked" if _blocking_rules(gate) else AWAITING_SIGNOFF


_ORDER = {"failed": 0, "warned": 1, "insufficient": 2}


def _findings(gate: GateRecord) -> list[Finding]:
    found = [r for r in gate.decision.results if r.status != "passed"]
    found.sort(key=lambda r: (not r.blocking, _ORDER.get(r.status, 3)))
    return [Finding(r.rule_id, r.status, r.blocking, r.metric, r.comparison, r.threshold, r.observed,
                    _where(r), r.reason, r.baseline_value) for r in found]


def _where(result: RuleResult) -> list[str]:
    places = []
    for failing in result.failing:
        group = failing.get("group")
        value = failing.get("value")
        feature = failing.get("feature")
        place = " ".join(part for part in (None if feature is None else str(feature) + (
            "" if group is None else f"={group}"), None if value is None else f"{value:.3g}") if part)
        places.append(place)
    return places


def _trend(conn: duckdb.DuckDBPyConnection, model: str, latest_gates: list[GateRecord],
           versions: list[str]) -> list[GatedPoint]:
    """Per version, what its latest binding gate judged for each metric rule the newest gate holds to a fixed
    bound (the worst column or group, small groups set aside as the gate did), with the record's interval
    where the judged value is the record's own."""
    tracked = {r.rule_id for r in latest_gates[-1].decision.results
               if r.kind == "metric" and r.metric and r.threshold is not None and r.comparison
               and r.baseline_value is None}
    if not tracked:
        return []
    names = sorted({r.metric for g in latest_gates for r in g.decision.results if r.rule_id in tracked and r.metric})
    intervals = {(version, metric, feature): (value, low, high)
                 for version, metric, feature, value, low, high in evaluations.gated_trend(conn, model, names)}
    order = {version: index for index, version in enumerate(versions)}
    points = []
    for gate in sorted(latest_gates, key=lambda g: order.get(g.version, len(order))):
        for result in gate.decision.results:
            if result.rule_id not in tracked or result.threshold is None or result.metric is None:
                continue
            value, low, high = intervals.get((gate.version, result.metric, result.feature), (None, None, None))
            same = value is not None and result.observed is not None and result.group is None \
                and abs(value - result.observed) <= 1e-12
            points.append(GatedPoint(result.rule_id, result.metric, result.feature, result.group, gate.version,
                                     result.observed, low if same else None, high if same else None,
                                     result.threshold, str(result.comparison), result.status))
    return points


def _bound_words(comparison: str | None, threshold: float | None) -> str:
    """What the rule asks, worded as a requirement: "(under 0.99)" beside 0.998 had read as a description."""
    if comparison == "max_regression":
        return f"may fall at most {threshold:.3g} below it"
    word = {"<=": "at most", "<": "under", ">=": "at least", ">": "over"}.get(comparison or "", comparison or "")
    return f"must be {word} {threshold:.3g}"


def _tasks(conn: duckdb.DuckDBPyConnection, user: User, models: list[ModelReadiness],
           items: list[ReviewItem], binding_of: Callable[[str], LoadedPolicy], token: str | None = None) -> list[Task]:
    """What waits for `user` (acting with the credential `token`): by what their role may do
    (`binding_of(model)`: the pack binding it now)."""
    tasks: list[Task] = []
    role = user.role
    if allowed(role, Action.JUDGE):
        mine = [i for i in items if i.status == ItemStatus.CLAIMED and i.assignee == user.name]
        tasks += _grouped("claimed", mine, "claimed by you, waiting for your judgment")
        judged = {j.item_id for j, _ in judgments.all_judgments(conn) if j.reviewer == user.name}
        created = {(v.model, v.version) for v in registry.versions_created_by(conn, user.name)}
        waiting = [i for i in items if i.status == ItemStatus.OPEN and i.kind not in REVIEWERS_WORK
                   and i.id not in judged and (i.model, i.version) not in created]  # their own: someone else's
        tasks += _grouped("judge", waiting, "open for review")
    if allowed(role, Action.RESOLVE_ESCALATION):
        escalations = [i for i in items if i.kind == ItemKind.ESCALATION and i.status in (ItemStatus.OPEN,
                                                                                           ItemStatus.CLAIMED)]
        tasks += _grouped("escalation", escalations, "escalated: the retraining loop stopped short of the policy")
        tasks += _answered_escalations(models, items, may_override=allowed(role, Action.OVERRIDE))
    latest_moves = {move.model: move for move in aliases.current_moves(conn)}
    for readiness in models:
        version = readiness.gated_version
        in_production = readiness.production is not None and readiness.production.version == version
        if version is None or readiness.verdict not in ("passed", AWAITING_SIGNOFF) or in_production:
            continue
        if allowed(role, Action.SIGN_OFF) and _awaits_signoff(conn, readiness.model, version, user.name):
            tasks.append(Task("sign_off", readiness.model, version, 1,
                              f"{readiness.model} v{version} passed its gate's rules and awaits your sign-off"))
        elif allowed(role, Action.RELEASE) and _releasable(conn, readiness.model, version, user.name,
                                                           binding_of, token):
            moved = latest_moves.get(readiness.model)  # not the production basis: the rollback itself
            rolled_back = moved is not None and moved.action == "rollback" and moved.previous_version == version
            tasks.append(Task("release", readiness.model, version, 1, (
                f"{readiness.model} v{version} passed its gate and has its approvals, but {moved.actor} rolled it "
                f"back from production at {moved.moved_at:%Y-%m-%d %H:%M}: release it again once that cause is "
                "settled" if moved is not None and rolled_back else
                f"{readiness.model} v{version} passed its gate and has its approvals: release it")))
    if allowed(role, Action.OVERRIDE):
        now = _now()
        for readiness in models:
            move = readiness.production
            if move is None or move.action != "override" or move.override_expires is None:
                continue
            left = move.override_expires - now
            when = (f"EXPIRED {move.override_expires:%Y-%m-%d %H:%M} UTC" if left <= timedelta(0)
                    else f"expires {move.override_expires:%Y-%m-%d} (in {_days(left)})")
            urgent = "" if left > EXPIRING_SOON else ": release through the gate, roll back or override again"
            tasks.append(Task("override", move.model, move.version, 1,
                              f"{move.model} v{move.version} is in production on an override that {when}{urgent}"))
    if allowed(role, Action.GATE):
        failed = [j for j in jobs.list_jobs(conn, status=JobStatus.FAILED)]
        tasks += [Task("failed_job", j.model, j.version, 1, f"retraining job {j.id} of {j.model} v{j.version} failed "
                                                           f"(`govern jobs show {j.id}`)") for j in failed]
    return tasks


def _answered_escalations(models: list[ModelReadiness], items: list[ReviewItem], *, may_override: bool) -> list[Task]:
    """A version still blocked whose loop escalated, the escalation answered: nothing more runs by itself, and a new
    user's trial found "nothing waits for you" for everyone, the way out (an override) only in the README."""
    answered = {(i.model, i.version): i for i in items if i.kind == ItemKind.ESCALATION
                and i.status in (ItemStatus.RESOLVED, ItemStatus.DISMISSED)}
    pending = {(i.model, i.version) for i in items if i.kind == ItemKind.ESCALATION
               and i.status in (ItemStatus.OPEN, ItemStatus.CLAIMED)}
    tasks = []
    for readiness in models:
        key = (readiness.model, readiness.gated_version)
        in_production = readiness.production is not None and readiness.production.version == key[1]
        if readiness.verdict != "blocked" or key not in answered or key in pending or in_production:
            continue
        model, version = key
        when = answered[key].resolved_at
        what = (f"release it on an override (`govern release {model} {version} --override --reason … --expires …`), "
                "retrain it by hand, or leave it" if may_override else
                "an admin may release it on an override; or retrain it by hand")
        tasks.append(Task("decide", model, str(version), 1,
                          f"{model} v{version} is blocked and its retraining loop escalated, answered"
                          + (f" {when:%Y-%m-%d %H:%M}" if when else "") + f": nothing more runs by itself; {what}"))
    return tasks


def _grouped(kind: str, items: list[ReviewItem], what: str) -> list[Task]:
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        counts[(item.model, item.version)] = counts.get((item.model, item.version), 0) + 1
    return [Task(kind, model, version, n, f"{n} item{'s' if n != 1 else ''} of {model} v{version} {what}")
            for (model, version), n in counts.items()]


def _awaits_signoff(conn: duckdb.DuckDBPyConnection, model: str, version: str, user: str) -> bool:
    found = registry.get_version(conn, model, version)
    if found is None or found.created_by == user:
        return False  # the creator's approval would not count
    return not any(s.reviewer == user and s.decision != SignOffDecision.WITHDRAW
                   for s in signoffs.current_signoffs(conn, model, version))


def _releasable(conn: duckdb.DuckDBPyConnection, model: str, version: str, releaser: str,
                binding_of: Callable[[str], LoadedPolicy], token: str | None = None) -> bool:
    """Whether `releaser`, acting with the credential `token`, may release it now (as `release` judges it:
    the board had offered releases its own credential made fail)."""
    found, record = registry.get_model(conn, model), registry.get_version(conn, model, version)
    if found is None or record is None:
        return False
    try:
        _check_releasable(conn, found, record, releaser, binding_of(model), token)
    except (NotAllowed, NotFound):
        return False
    return True


def _days(left: timedelta) -> str:
    days = left.days
    return f"{days} days" if days >= 2 else f"{int(left.total_seconds() // 3600)} hours"
