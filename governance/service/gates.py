"""The release gate on the store: judge a version's latest evaluation, record the decision, and turn
failures into review items and a retraining job (once per piece of evidence)."""

from __future__ import annotations

import hashlib
import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast

import duckdb

from governance.errors import InvalidInput, NotFound
from governance.records import (
    Evaluation,
    GateRecord,
    GateVerdict,
    ItemStatus,
    Job,
    JobStatus,
    PredictionSet,
    Priority,
    Record,
    ReviewItem,
)
from governance.roles import Action
from governance.service.base import _now, _present, _require_model, _require_version, after, job_as_seen_by
from governance.service.evaluations import challenger_baseline, origin_baseline, require_current_evaluation
from governance.service.policies import PolicyActions, PolicyRef
from governance.service.registry import RegistryActions
from governance.store import aliases, evaluations, gates, jobs, registry, review_items, signoffs

if TYPE_CHECKING:
    from evaluation import MetricSet
    from policies import GateDecision, LoadedPolicy, ReviewState, RuleResult
    from policies.schema import RetrainAction, ReviewAction, Rule

EXAMPLE_SEED = 0


@dataclass(frozen=True)
class GateOutcome:
    """The decision, where it was stored, and the work it queued (empty for a dry run)."""

    decision: GateDecision
    gate_id: str | None
    review_items: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)  # review items for engineers: the loop stopped
    worked: list[str] = field(default_factory=list)  # of review_items, those judged or dismissed already
    superseded: list[str] = field(default_factory=list)  # jobs of earlier gates of the version, cancelled now
    retrained: dict[str, str] = field(default_factory=dict)  # job → the version it made: this evidence's retrain ran

    def to_dict(self) -> dict[str, Any]:
        return {"gate_id": self.gate_id, "decision": self.decision.to_dict(), "review_items": self.review_items,
                "jobs": self.jobs, "escalations": self.escalations, "worked": self.worked,
                "superseded": self.superseded, "retrained": self.retrained}


@dataclass(frozen=True)
class JudgedValue(Record):
    """One column's or group's value as a bounded metric rule of a stored gate judged it, or set it aside:
    what the Model version page draws against the rule's threshold."""

    rule_id: str
    metric: str  # "family.metric"
    feature: str | None
    group: str | None  # None for a per-column value (a gap between groups)
    status: Literal["passed", "failed", "set aside"]
    blocking_rule: bool  # the rule's severity is block (a failure here blocks the release)
    comparison: str  # "<=" (a maximum) or ">=" (a minimum)
    threshold: float
    judge: str  # point, ci_upper or ci_lower: what of the record was held against the threshold
    judged: float | None  # the value held against it; None when set aside
    observed: float | None  # the point estimate (for a gap: over the groups the rule kept)
    ci_low: float | None
    ci_high: float | None
    n: int | None
    note: str  # "over the 3 groups with at least 50 rows", or why it was set aside


def _key(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def example_key(model: str, version: str, policy_sha256: str, values_sha256: str, rule_id: str | None,
                row: Any) -> str:
    """The dedupe key of the example a gate samples for `rule_id` at `row` (its item id is ri- and the first 12
    hex digits); `values_sha256` is that of the gate's evaluation (`MetricSet.values_sha256`). A gold item passing
    for an example takes the id its own row would have (`add_review_item`): with a random one, a reviewer who
    recomputed the examples' ids from `gate show` told it apart."""
    return _key(model, version, policy_sha256, values_sha256, "example", f"{rule_id}:{row}")


class GateActions(PolicyActions, RegistryActions):
    def gate(self, *, model: str, version: str, policy: PolicyRef | None = None,
             dry_run: bool = False) -> GateOutcome:
        """Judge the version's latest evaluation under a policy pack.

        Enforced (binding), the gate runs the pack assigned to the model (`policy`, if given, must be
        that pack, else NotAllowed); the decision is stored and logged, and each failing rule queues
        what its on_fail asks: a review item with the rule's evidence, sampled examples, and one
        retraining job (waiting_review while those items are open). Gating again on the same evidence
        queues nothing new, except a retrain whose job failed or was cancelled: that one is queued anew.
        A dry run may use any pack or file (default: the assigned one) and stores and queues nothing.
        Raises NotFound without an evaluation.
        """
        def inputs(conn: duckdb.DuckDBPyConnection) -> tuple[
                LoadedPolicy, Evaluation, MetricSet, dict[str, tuple[str, MetricSet] | None], ReviewState]:
            self._authorize(conn, Action.GATE)
            _require_model(conn, model)
            loaded = self._resolve(conn, policy if policy is not None else self._assigned(conn, model).loaded) \
                if dry_run else self._binding(conn, model, policy)
            return (loaded, *self._gate_inputs(conn, model, version, loaded))

        loaded, evaluation, metrics, baselines, reviews = self._run(inputs)
        decision = _decide(loaded, metrics, baselines, reviews, "dry_run" if dry_run else "enforce", model=model,
                           version=version)
        if dry_run:
            return GateOutcome(decision, None)
        prediction_set = self._run(lambda conn: registry.get_prediction_set(conn, evaluation.prediction_set_id))
        examples = self._examples(loaded, decision, prediction_set, metrics)
        return self._run(lambda conn: self._record(conn, model, version, evaluation.id, loaded, decision, examples,
                                                   metrics))

    def _gate_within(self, conn: duckdb.DuckDBPyConnection, model: str, version: str,
                     prediction_set: PredictionSet) -> GateOutcome:
        """A binding gate of the version's latest evaluation inside the caller's unit of work (a retrained
        version is registered, evaluated and gated in one transaction: it appears whole or not at all)."""
        self._authorize(conn, Action.GATE)
        loaded = self._binding(conn, model, None)
        evaluation, metrics, baselines, reviews = self._gate_inputs(conn, model, version, loaded)
        decision = _decide(loaded, metrics, baselines, reviews, "enforce", model=model, version=version)
        examples = self._examples(loaded, decision, prediction_set, metrics)
        return self._record(conn, model, version, evaluation.id, loaded, decision, examples, metrics)

    def _gate_inputs(self, conn: duckdb.DuckDBPyConnection, model: str, version: str, loaded: LoadedPolicy
                     ) -> tuple[Evaluation, MetricSet, dict[str, tuple[str, MetricSet] | None], ReviewState]:
        from policies import ReviewState
        from policies.schema import MetricRule
        evaluation = require_current_evaluation(conn, model, version)
        metrics = evaluations.metric_set(conn, evaluation)
        baselines: dict[str, tuple[str, MetricSet] | None] = {}
        for rule in loaded.policy.rules:
            if isinstance(rule, MetricRule) and rule.max_regression is not None and rule.baseline not in baselines:
                baselines[rule.baseline] = self._baseline(conn, model, rule.baseline, version)
        # require_current_evaluation checked that the version exists
        artifact = _present(registry.get_version(conn, model, version), f"version {model}/{version}").artifact_sha256
        current = signoffs.current_signoffs(conn, model, version)
        # Approvals count for the evidence they saw; rejections follow the artifact under any version name.
        reviews = ReviewState(approvals=sum(s.decision == "approve" and s.evaluation_id == evaluation.id
                                            and s.artifact_sha256 == artifact for s in current),
                              rejections=len(signoffs.rejections_of_artifact(conn, artifact)),
                              open_items=review_items.count_open_items(conn, model, version))
        return evaluation, metrics, baselines, reviews

    def _baseline(self, conn: duckdb.DuckDBPyConnection, model: str, baseline: str,
                  version: str) -> tuple[str, MetricSet] | None:
        """(label, records) a regression rule's `baseline` names for `version`: the production alias's
        latest evaluation, the version's own challenger's (`challenger`), the one its retraining started
        from (`origin`: its nearest ancestor no retraining job made), or a named version's."""
        if baseline == "challenger":
            return challenger_baseline(conn, model, version)
        if baseline == "origin":  # on the version's own eval rows where its retraining job scored the origin there
            found_version = registry.get_version(conn, model, version)
            return origin_baseline(conn, model, version) or \
                self._origin(conn, model, found_version.parent_version if found_version else None)
        if baseline == "production":
            target = aliases.get_alias(conn, model, "production")
            label = f"production, version {target}"
            if target == version:  # judged again once released: against what production held before it
                moves = [m for m in aliases.history(conn, model) if m.alias == "production" and m.version == version]
                target = moves[-1].previous_version if moves else None
                label = f"production before version {version}, version {target}"
            if target is None:
                return None
        else:
            if registry.get_version(conn, model, baseline) is None:
                raise InvalidInput(f"the policy's baseline version {baseline!r} of model {model!r} is not registered.")
            target, label = baseline, f"version {baseline}"
        return self._evaluated(conn, model, target, label)

    def _origin(self, conn: duckdb.DuckDBPyConnection, model: str, parent: str | None) -> tuple[str, MetricSet] | None:
        """The `origin` baseline of a version whose parent is `parent`: that parent, or its nearest ancestor
        no retraining job made (so that two rounds of the loop cannot each lose the allowed amount)."""
        origin = registry.loop_origin(conn, model, parent)
        return self._evaluated(conn, model, origin, f"origin, version {origin}") if origin else None

    @staticmethod
    def _evaluated(conn: duckdb.DuckDBPyConnection, model: str, version: str,
                   label: str) -> tuple[str, MetricSet] | None:
        """(label, the version's latest evaluation's records), or None where it has none."""
        found = evaluations.latest_evaluation(conn, model, version)
        return (label, evaluations.metric_set(conn, found)) if found else None

    def _examples(self, loaded: LoadedPolicy, decision: GateDecision, prediction_set: PredictionSet | None,
                  metrics: MetricSet) -> dict[str, list[dict[str, Any]]]:
        """Sampled example rows per failing rule that asks for review (read from the set's Parquet file)."""
        from governance.sampling import sample_examples
        from policies.schema import MetricRule
        wanted = {r.id: r.on_fail.review for r in loaded.policy.rules
                  if isinstance(r, MetricRule) and r.on_fail and r.on_fail.review}
        failing = [res for res in decision.results if res.status in ("failed", "warned") and res.rule_id in wanted]
        if not failing:
            return {}
        # the store keeps every prediction set an evaluation names
        sampled = _present(prediction_set, "the evaluated prediction set")
        path = self.prediction_set_path(sampled)
        threshold = float(metrics.params.get("threshold", 0.5))
        examples = {}
        rows: set[int] = set()  # taken by this gate's rules so far: a row is judged once, whichever rule sampled it
        for result in failing:
            review = wanted[result.rule_id]
            groups: list[tuple[str, str] | None] = \
                list(_worst_groups(result, metrics)) if review.strategy == "worst_group" else []
            # enough to fill the sample past the rows earlier rules took (a trial's 120 items held 72 rows)
            queues = [sample_examples(path, sampled, strategy=review.strategy, count=review.sample + len(rows),
                                      seed=EXAMPLE_SEED, threshold=threshold, group=group)
                      for group in groups or [None]]
            picked: list[dict[str, Any]] = []  # the sample shared between the failing columns, in turns
            while len(picked) < review.sample and any(queues):
                for queue in queues:
                    while queue and queue[0]["row"] in rows:  # a row of two failing groups is taken once
                        queue.pop(0)
                    if queue and len(picked) < review.sample:
                        rows.add(queue[0]["row"])
                        picked.append(queue.pop(0))
            examples[result.rule_id] = [{**example, "rank": rank} for rank, example in enumerate(picked, start=1)]
        return examples

    def _record(self, conn: duckdb.DuckDBPyConnection, model: str, version: str, evaluation_id: str,
                loaded: LoadedPolicy, decision: GateDecision, examples: dict[str, list[dict[str, Any]]],
                metrics: MetricSet) -> GateOutcome:
        from policies.schema import MetricRule
        user = self._authorize(conn, Action.GATE)
        now = after(gates.newest_gate_time(conn, model, version), _now())  # the latest is the last recorded
        record = GateRecord(f"gd-{uuid.uuid4().hex[:12]}", model, version, evaluation_id, decision.policy_name,
                            decision.policy_version, decision.policy_sha256, decision.metrics_sha256,
                            GateVerdict(decision.verdict), decision, now, user.name)
        gates.insert_gate(conn, record)
        gates.set_policy_text(conn, record.id, loaded.text)
        # the same evidence: the same predictions measured alike (an evaluation again with another bootstrap is
        # not new evidence: it had filed every example again and restarted a loop that had escalated)
        evidence_key = (model, version, decision.policy_sha256, metrics.values_sha256())
        rules = {r.id: r for r in loaded.policy.rules}
        item_ids: list[str] = []
        blocking_items: list[str] = []
        strategies: list[str] = []
        retrain_rules: list[str] = []
        retrains: dict[str, RetrainAction] = {}  # the retrain action of each rule in retrain_rules
        acting = [(result, rule) for result in decision.results
                  # only metric rules have an on_fail
                  if result.status in ("failed", "warned") and isinstance(rule := rules[result.rule_id], MetricRule)
                  and rule.on_fail is not None]
        for _, rule in acting:
            if rule.on_fail is not None and rule.on_fail.retrain:
                strategies += [s for s in rule.on_fail.retrain.strategies() if s not in strategies]
                retrain_rules.append(rule.id)
                retrains[rule.id] = rule.on_fail.retrain
        job_ids: list[str] = []
        retrained: dict[str, str] = {}
        kept: str | None = None  # this gate's job: the one an earlier gate on the same evidence queued, or a new one
        escalations: list[str] = []
        escalation_id = f"ri-{_key(*evidence_key, 'escalation')[:12]}"
        # the loop escalated on this evidence before: judged again, it stays stopped (whether a round made progress
        # is judged on intervals, which another bootstrap of the same predictions moves)
        earlier = review_items.get_item(conn, escalation_id) if retrains else None
        stop = _loop_stop(conn, model, version, retrains, decision, metrics, rules) if earlier is None else \
            {**earlier.evidence, "reason": f"it escalated on the same evidence before ({escalation_id}): "
                                           f"{earlier.evidence.get('reason')}"}
        starved = [r.rule_id for r in decision.results if r.blocking and r.status == "insufficient"]
        if stop is not None and starved and earlier is None:  # what no retrain can change, said where engineers read
            stop = {**stop, "reason": stop["reason"] + f"; {', '.join(starved)} also block{'s' * (len(starved) == 1)}"
                    " for too little evidence (rows or groups under the rule's min_samples): more eval rows settle "
                    "that, not retraining"}
        for result, rule in acting:
            on_fail = rule.on_fail
            if on_fail is not None and on_fail.review:
                # the loop has stopped: reviewers read that no job waits on them (the guidance says one may)
                note = (f"none follows this review: the loop stopped and escalated to engineers ({escalation_id}): "
                        f"{stop['reason']}. Label corrections still go into the model's next feedback dataset."
                        if stop is not None and on_fail.retrain else None)
                same_as = stop.get("same_as") if stop is not None else None
                if note and same_as:  # the same model on the same rows: the same examples, judged there already
                    note += (f" No examples are sampled: they would be version {same_as}'s again, whose items hold "
                             "their judgments.")
                ids = self._queue_items(conn, record, rule.id, on_fail.review, result,
                                        [] if same_as else examples.get(rule.id, []), evidence_key, now, note)
                item_ids += ids
                blocking_items += ids if on_fail.retrain else []
        if stop is not None:
            evidence = {**stop, "failing_rules": retrain_rules or [r.rule_id for r in decision.results if r.blocking],
                        "strategies": strategies, "gate": record.id}
            item = ReviewItem(escalation_id, model, version, "escalation", None,
                              record.id, Priority.BLOCKING, ItemStatus.OPEN, 1, evidence, now, record.created_by)
            escalations = review_items.insert_items(conn, [(item, _key(*evidence_key, "escalation"))])
            if earlier is None:
                self._log(conn, "loop.escalate", f"version:{model}/{version}", {
                    "item": escalations[0], "reason": stop["reason"], "rounds": stop["rounds"],
                    "max_rounds": stop["max_rounds"]})
        elif strategies:
            status = JobStatus.WAITING_REVIEW if blocking_items else JobStatus.QUEUED
            job = Job(f"job-{uuid.uuid4().hex[:12]}", model, version, "retrain", status, strategies, retrain_rules,
                      blocking_items, record.id, 0, now, now)
            queued = kept = jobs.insert_job(conn, job, _key(*evidence_key, "retrain", ",".join(strategies)))
            # items worked already (gating again after reviewers judged them): settled now, not at the next
            # worker, which had cancelled it without a word while the gate said a job followed
            self._queue_ready_jobs(conn, now)
            held = jobs.get_job(conn, queued)
            if held is not None and not held.status.finished:  # one that failed for good follows no more
                job_ids.append(queued)
            elif held is not None and held.status == JobStatus.SUCCEEDED:  # gated again on this evidence
                made = (jobs.job_state(conn, queued) or {}).get("result_version")
                if made:
                    retrained[queued] = str(made)
        superseded = self._supersede_jobs(conn, record, kept, now)
        self._log(conn, "gate.decide", f"version:{model}/{version}", {
            "gate": record.id, "verdict": decision.verdict, "policy": decision.policy_name,
            "policy_version": decision.policy_version, "policy_sha256": decision.policy_sha256,
            "metrics_sha256": decision.metrics_sha256, "evaluation": evaluation_id,
            "decision_threshold": decision.decision_threshold, "rows": decision.rows,
            "failed_rules": [r.rule_id for r in decision.results if r.blocking],
            "review_items": item_ids, "jobs": job_ids, "escalations": escalations,
        })
        # gating the same evidence again finds the items it filed before: those worked already are not new work
        worked = [i for i in item_ids if (found := review_items.get_item(conn, i)) is not None
                  and found.status in (ItemStatus.RESOLVED, ItemStatus.DISMISSED)]
        return GateOutcome(decision, record.id, item_ids, job_ids, escalations, worked, superseded, retrained)

    def _supersede_jobs(self, conn: duckdb.DuckDBPyConnection, record: GateRecord, kept: str | None,
                        now: datetime) -> list[str]:
        """Cancel the version's jobs that earlier gates queued and no worker has started, but `kept`: the binding
        gate just recorded says what follows now. Jobs a production batch's monitoring queued stay. A job queued
        under a pack since replaced (`policy assign`) had still run after the new pack's job, both searching the
        new pack's rules: two identical versions."""
        superseded = []
        for job in jobs.list_jobs(conn):
            if (job.model, job.version) != (record.model, record.version) or job.id == kept \
                    or job.status not in (JobStatus.WAITING_REVIEW, JobStatus.QUEUED) \
                    or job.gate_decision_id is None or gates.get_gate(conn, job.gate_decision_id) is None:
                continue  # a monitoring rule's job (it names the batch's evaluation, not a gate) is not a gate's
            why = (f"superseded by gate {record.id} ({record.policy_name} v{record.policy_version}), which judged "
                   f"version {record.version} again" + ("" if kept else " and queued no retrain"))
            jobs.finish_job(conn, job.id, "cancelled", now, error=why)
            self._log(conn, "job.cancel", f"job:{job.id}", {"was": str(job.status), "reason": why})
            superseded.append(job.id)
        return superseded

    def _queue_items(self, conn: duckdb.DuckDBPyConnection, record: GateRecord, rule_id: str, review: ReviewAction,
                     result: RuleResult, rows: list[dict[str, Any]], evidence_key: tuple[str, str, str, str],
                     now: datetime, retraining: str | None = None) -> list[str]:
        """The rule's item and its sampled examples; `retraining`, on the rule's item: why no retraining job
        follows (the loop escalated)."""
        priority = Priority.BLOCKING if result.blocking else Priority.NORMAL
        items: list[tuple[str, dict[str, Any], str]] = [
            ("rule_failure", {"rule": result.to_dict(), "policy": record.policy_name,
                              "policy_version": record.policy_version}
             | ({"retraining": retraining} if retraining else {}), rule_id)]
        items += [("example", row, f"{rule_id}:{row['row']}") for row in rows]
        batch = []
        for kind, evidence, discriminator in items:
            key = (example_key(*evidence_key, rule_id, evidence["row"]) if kind == "example"
                   else _key(*evidence_key, kind, discriminator))
            batch.append((ReviewItem(f"ri-{key[:12]}", record.model, record.version, kind, rule_id, record.id,
                                     priority, ItemStatus.OPEN, review.judgments, evidence, now, record.created_by),
                          key))
        return review_items.insert_items(conn, batch)

    def list_jobs(self, *, status: str | None = None) -> list[Job]:
        def unit(conn: duckdb.DuckDBPyConnection) -> list[Job]:
            user = self._authorize(conn, Action.VIEW)
            return [job_as_seen_by(job, user) for job in jobs.list_jobs(conn, status=status)]

        return self._run(unit)

    def gate_policy_text(self, *, gate_id: str) -> str:
        """The exact policy text a stored gate decision was made under (its sha256 is on the decision)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> str:
            self._authorize(conn, Action.VIEW)
            text = gates.policy_text(conn, gate_id)
            if text is None:
                raise NotFound(f"gate decision {gate_id!r} does not exist.")
            return text

        return self._run(unit)

    def judged_values(self, *, model: str, version: str) -> list[JudgedValue]:
        """Every value the max / min metric rules of the version's latest gate judged, per column and group,
        passed, failed or set aside; [] when the version has no gate. Replayed from the exact policy text and
        the evaluation that gate judged (the gate is a pure function of them), so what a page draws against a
        threshold is the value the gate saw: a gap over the groups with enough rows, not over every group.
        Rules against a baseline are left out (their bound moves with the baseline); under a worst-group rule each
        group is held against the bound, as the gate holds the worst."""
        def unit(conn: duckdb.DuckDBPyConnection) -> tuple[GateRecord, str, MetricSet] | None:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            gate = gates.latest_gate(conn, model, version)
            if gate is None:
                return None
            judged = next((e for e in evaluations.list_evaluations(conn, model, version)
                           if e.id == gate.evaluation_id), None)
            text = gates.policy_text(conn, gate.id)
            if judged is None or text is None:
                return None
            return gate, text, evaluations.metric_set(conn, judged)

        found = self._run(unit)
        return _judged_values(*found) if found is not None else []

    def latest_gate(self, *, model: str, version: str) -> GateRecord | None:
        return self._read(Action.VIEW, lambda conn: gates.latest_gate(conn, model, version))

    def gate_decision(self, *, model: str, version: str, gate_id: str | None = None) -> GateRecord:
        """The version's stored gate decision: the latest (every stored decision is binding; dry runs store
        nothing), or the one with id `gate_id`. NotFound, naming the command to run, when there is none."""
        def unit(conn: duckdb.DuckDBPyConnection) -> GateRecord:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            found = gates.get_gate(conn, gate_id) if gate_id else gates.latest_gate(conn, model, version)
            if gate_id and (found is None or (found.model, found.version) != (model, version)):
                raise NotFound(f"{model} version {version} has no gate decision {gate_id!r}; "
                               f"`govern gate show {model} {version}` shows its latest.")
            if found is None:
                raise NotFound(f"{model} version {version} has no gate decision yet; run "
                               f"`govern gate {model} {version}`.")
            return found

        return self._run(unit)


def _loop_stop(conn: duckdb.DuckDBPyConnection, model: str, version: str, retrains: dict[str, RetrainAction],
               decision: GateDecision, metrics: MetricSet, rules: dict[str, Rule]) -> dict[str, Any] | None:
    """Why the feedback loop must not queue another retrain of this version, or None to go on.

    It stops when the lineage already had `max_rounds` retrains (the smallest the failing rules'
    retrain actions allow), when a retrained version fails only rules without a retrain action
    (nothing more the loop can do), when the retrain produced its parent's very bytes, or when no flagged
    rule's judged value improved on the parent's by more than its confidence interval's half-width
    (by any amount, without an interval): more of the same would not converge. Progress is judged on
    the rules that blocked the parent, the ones the retrain aimed at: a round that fixed them and broke
    another rule (parity fixed, ECE now over its bound) made progress, and the next round aims at the
    new failure, within max_rounds. The reason carries
    the candidates the last search tried, so an engineer sees what was tried and why none passed.
    `retrains` maps each failing rule that asks for a retrain to its retrain action.
    """
    from evaluation.catalogue import METRICS
    from policies.schema import MetricRule
    max_rounds = min((retrain.max_rounds for retrain in retrains.values()), default=2)
    chain = registry.lineage(conn, model, version)
    # the version was just gated, so it exists
    current = chain[0] if chain else _present(registry.get_version(conn, model, version), f"version {model}/{version}")
    lineage = current.lineage or {}
    rounds = sum(1 for v in chain if (v.lineage or {}).get("job"))
    context: dict[str, Any] = {"rounds": rounds, "max_rounds": max_rounds}
    if lineage.get("job"):
        context["candidates"] = jobs.job_search(conn, lineage["job"]).get("candidates", [])
        context["chosen"] = (lineage.get("search") or {}).get("chosen")
    if not retrains:  # nothing to retrain for: the loop ends here, but a retrain that still fails says so
        stuck = [r.rule_id for r in decision.results if r.blocking and r.kind == "metric"]
        if lineage.get("job") and stuck:
            return {"reason": f"the retrained version is blocked by {', '.join(stuck)}, whose failure queues no "
                              "retrain: the loop cannot fix it", **context}
        return None
    parent = registry.get_version(conn, model, current.parent_version) if current.parent_version else None
    if lineage.get("job") and parent is not None and parent.artifact_sha256 == current.artifact_sha256:
        return {"reason": f"the retrain produced the same model as version {parent.version} (same sha256)",
                "same_as": parent.version, **context}
    if rounds >= max_rounds:
        return {"reason": f"the lineage had {rounds} retrain(s), the policy's max_rounds is {max_rounds}",
                **context}
    if not lineage.get("job") or parent is None:
        return None
    before = gates.latest_gate(conn, model, parent.version)
    if before is None:
        return None
    now = {r.rule_id: r for r in decision.results}
    progress = []
    for old in before.decision.results:  # the rules the retrain aimed at: those that blocked its parent
        rule, result = rules.get(old.rule_id), now.get(old.rule_id)
        aimed = isinstance(rule, MetricRule) and rule.on_fail is not None and rule.on_fail.retrain is not None
        if not old.blocking or not aimed or result is None:
            continue
        if not result.blocking:  # fixed: the round did its work, whatever else fails now
            progress.append((result.rule_id, math.inf, 0.0, ""))
            continue
        if result.judged is None or old.judged is None:
            continue
        if result.comparison == "max_regression":  # a metric rule's result names its metric
            higher = METRICS[_present(result.metric, f"the metric of rule {result.rule_id}")].better == "higher"
        else:
            higher = result.comparison == ">="
        progress += _column_progress(old, result, rules[result.rule_id], metrics, higher)
    if progress and all(better <= margin for _, better, margin, _ in progress):
        shown = ", ".join(f"{label} {'improved' if better > 0 else 'worsened' if better < 0 else 'unchanged'}"
                          + (f" by {abs(better):.4g}" if better else "") + f" ({values}), "
                          f"its interval's half-width {margin:.4g}" for label, better, margin, values in progress)
        return {"reason": f"no flagged rule improved beyond its confidence interval on version "
                          f"{current.parent_version}: {shown}", **context}
    return None


def _column_progress(old: RuleResult, result: RuleResult, rule: Rule, metrics: MetricSet,
                     higher: bool) -> list[tuple[str, float, float, str]]:
    """How far a rule still failing moved since its parent's decision: (what, improvement, its interval's
    half-width, the values). A rule judging several columns or groups is followed per column (or group) that
    failed before (unless it judges only the worst group): one now passing made progress, one still failing is
    compared with itself. Comparing the
    rule's worst values instead set one column's gap against another's (race 0.29 before, marital status 0.19
    after: "improved by 0.098", where race had fallen to 0.08 and marital status from 0.25)."""
    def key(entry: dict[str, Any]) -> tuple[Any, Any]:
        return entry.get("feature"), entry.get("group")

    def named(where: tuple[Any, Any]) -> str:
        return "=".join(str(part) for part in where if part is not None)

    before = {key(entry): entry["value"] for entry in old.failing if entry.get("value") is not None}
    after = {key(entry): entry["value"] for entry in result.failing if entry.get("value") is not None}
    set_aside = {entry.get("feature") for entry in result.excluded}
    from policies.schema import MetricRule
    every = isinstance(rule, MetricRule) and rule.group != "worst"  # its failing entries list every failure
    if not every or not before or not all(where[0] is not None for where in before):  # the rule's own values
        was, now = cast(float, old.judged), cast(float, result.judged)  # the caller skips rules without them
        return [(result.rule_id, (now - was) if higher else (was - now), _half_width(metrics, result, rule),
                 f"{_at(old, was)} → {_at(result, now)}")]
    moved = []
    for where, was in before.items():
        label = f"{result.rule_id} on {named(where)}"
        if where in after:
            now = after[where]
            moved.append((label, (now - was) if higher else (was - now),
                          _half_width(metrics, result, rule, feature=where[0], group=where[1]),
                          f"{was:.4g} → {now:.4g}"))
        elif where[0] not in set_aside:  # judged and no longer failing
            moved.append((label, math.inf, 0.0, f"{was:.4g} → passes"))
    return moved


def _at(result: RuleResult, value: float) -> str:
    where = "=".join(str(part) for part in (result.feature, result.group) if part is not None)
    return f"{where} {value:.4g}" if where else f"{value:.4g}"


def _half_width(metrics: MetricSet, result: RuleResult, rule: Rule, *, feature: str | None = None,
                group: str | None = None) -> float:
    """Half the width of the confidence interval of the record a rule judged (0 without one), or of the one
    for `feature` (and `group`) where given: for a parity gap, the gap over the groups the rule judged, not
    over every group (on ACS a 3-row race group stretched that interval to [0.18, 1.0] and stopped a loop that
    had cut the judged gap from 0.54 to 0.16)."""
    from policies.gate import judged_evidence
    from policies.schema import MetricRule
    family, name = (result.metric or ".").split(".", 1)
    found = metrics.find(family, name, feature or result.feature, group if feature else result.group)
    if found is not None and isinstance(rule, MetricRule):
        judged, _ = judged_evidence(rule, found, metrics)
        found = judged.record if judged is not None else found
    if found is None or found.ci_low is None or found.ci_high is None:
        return 0.0
    return (found.ci_high - found.ci_low) / 2


def _decide(loaded: LoadedPolicy, metrics: MetricSet, baselines: dict[str, tuple[str, MetricSet] | None],
            reviews: ReviewState, mode: Literal["enforce", "dry_run"], *, model: str, version: str) -> GateDecision:
    from policies import PolicyInvalid, run_gate
    from policies.schema import MetricRule
    try:
        decision = run_gate(policy=loaded, metrics=metrics, baseline=baselines, reviews=reviews, mode=mode)
    except PolicyInvalid as exc:
        raise InvalidInput(f"{loaded.source}: {exc}") from exc
    if "challenger" not in baselines or baselines["challenger"] is not None:
        return decision
    # The gate says there is no baseline; the service knows the commands that make one.
    hint = (f" `govern train` fits a challenger itself; for a model trained elsewhere, ingest a challenger's scores "
            f"on the same eval rows with `govern ingest {model} {version} FILE --split challenger`, then "
            f"`govern evaluate {model} {version}`.")
    waiting = {r.id for r in loaded.policy.rules if isinstance(r, MetricRule) and r.max_regression is not None
               and r.baseline == "challenger"}
    return replace(decision, results=tuple(
        replace(r, reason=r.reason + hint) if r.rule_id in waiting and r.status == "insufficient" else r
        for r in decision.results))


def _judged_values(gate: GateRecord, text: str, metrics: MetricSet) -> list[JudgedValue]:
    from policies import PolicyInvalid, parse_policy
    from policies.gate import judged_evidence, rule_records  # the gate's own selection and evidence, not a copy
    from policies.schema import MetricRule

    try:
        loaded = parse_policy(text, source=f"gate {gate.id}")
    except PolicyInvalid:  # a pack this version of govern no longer reads: the stored decision still stands
        return []
    out: list[JudgedValue] = []
    for rule in loaded.policy.rules:
        if not isinstance(rule, MetricRule) or rule.max_regression is not None:
            continue
        limit, comparison = (rule.max, "<=") if rule.max is not None else (rule.min, ">=")
        if limit is None:
            continue
        try:
            records = rule_records(rule, loaded, metrics)
        except PolicyInvalid:  # the evaluation lacks the rule's column or group: nothing of it to draw
            continue
        for record in records:
            found, set_aside = judged_evidence(rule, record, metrics)
            if found is not None:
                passes = found.value <= limit if comparison == "<=" else found.value >= limit
                out.append(JudgedValue(rule.id, rule.metric, record.feature, record.group,
                                       "passed" if passes else "failed", rule.severity == "block", comparison, limit,
                                       rule.judge, found.value, found.record.value, found.record.ci_low,
                                       found.record.ci_high, found.record.n, found.note))
            for aside in set_aside:
                group = aside.get("group")
                out.append(JudgedValue(rule.id, rule.metric, record.feature, group, "set aside",
                                       rule.severity == "block", comparison, limit, rule.judge, None,
                                       record.value if group == record.group else None, None, None, aside.get("n"),
                                       str(aside.get("why", ""))))
    return out


def _worst_groups(result: RuleResult, metrics: MetricSet) -> list[tuple[str, str]]:
    """The groups worst_group's examples come from: `_worst_group` of each column the rule failed in (a new
    user's Wage run failed parity on race and marital status, and every example was race=Black), else the one."""
    from dataclasses import replace
    columns = list(dict.fromkeys(entry["feature"] for entry in result.failing
                                 if entry.get("feature") and entry.get("group") is None))
    if len(columns) > 1:
        found = [_worst_group(replace(result, feature=column, group=None, failing=[]), metrics) for column in columns]
        return [group for group in found if group is not None]
    one = _worst_group(result, metrics)
    return [one] if one is not None else []


def _worst_group(result: RuleResult, metrics: MetricSet) -> tuple[str, str] | None:
    """The group the examples come from for worst_group: the rule's failing group; for a gap in selection
    rates (demographic parity) the judged group the model selects least, for a gap in true positive rates
    (equal opportunity, equalized odds) the one whose positives it misses most: where labels recorded against
    a group hide, so reviewers who know the truth find them (on OJ with a biased store, every example came
    from the least accurate store and reviewers found no wrong label); else the judged group with the lowest
    accuracy. Never a group the rule set aside for too few rows: a handful of examples says nothing."""
    first = next((f for f in result.failing if f.get("feature") and f.get("group") is not None), None)
    if first:
        return first["feature"], first["group"]
    if result.feature and result.group:
        return result.feature, result.group
    if result.feature:
        measure = _DISADVANTAGE.get((result.metric or "").removeprefix("fairness.").rsplit("_", 1)[0], "accuracy")
        set_aside = {(e.get("feature"), str(e.get("group"))) for e in result.excluded}
        groups = [(r.value, r.group) for r in metrics.select("fairness", measure, result.feature)
                  if r.value is not None and r.group is not None and (result.feature, str(r.group)) not in set_aside]
        if groups:
            _, worst = min(groups, key=lambda value_group: value_group[0])
            return result.feature, worst
    return None


# Per gap metric, the per-group rate whose lowest group the gap disadvantages.
_DISADVANTAGE = {"demographic_parity": "selection_rate", "equal_opportunity": "true_positive_rate",
                 "equalized_odds": "true_positive_rate"}
