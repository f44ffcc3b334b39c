"""Production monitoring beyond drift: performance estimated without labels (CBPE) and the policy's rules on it.

A production batch is measured exactly where no labels are needed (drift, selection rates and their
parity) and its label-dependent performance is estimated from its scores, fitted on the version's eval
set (evaluation.estimation). Rules on `estimated.*` metrics in the model's policy pack are monitoring
rules: `govern monitor` judges them on every batch (the release gate does not), and a batch breaking one
files a monitor_alert review item and, as the rule's on_fail says, a retraining job.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import duckdb

from governance.records import Evaluation, ItemKind, ItemStatus, Job, JobStatus, PredictionSet, Priority, ReviewItem
from governance.store import jobs, review_items

if TYPE_CHECKING:

    from evaluation import MetricSet
    from policies import LoadedPolicy
    from policies.decision import GateDecision

DEFAULT_MAX_ECE = 0.05  # evaluation.estimation's default, without loading numpy to read it


@dataclass(frozen=True)
class MonitorOutcome:
    """What `monitor` did: the evaluation and its records, the drift alert (if any), the monitoring
    rules' decision (None when the policy has none) and the items and job they queued."""

    evaluation: Evaluation
    metrics: MetricSet
    alert: str | None
    decision: GateDecision | None = None
    items: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Any]:
        """(evaluation, records, alert), as monitor returned before estimates and monitoring rules."""
        return iter((self.evaluation, self.metrics, self.alert))

    def __getitem__(self, index: int) -> Any:
        return (self.evaluation, self.metrics, self.alert)[index]


def with_realised(batch_records: MetricSet, batch: PredictionSet, batch_path: Path, label_files: list[Path], *,
                  threshold: float) -> MetricSet:
    """`batch_records` plus the realised records over the batch's rows that have labels (the Parquet
    `label_files` of row_id, label); records the batch already has exactly, such as selection rates over
    all its rows, are kept as they are. Unchanged without label files."""
    from evaluation import MetricInputError, MetricSet, evaluate
    from evaluation.sources import labelled_rows
    from governance.limits import max_groups
    if not label_files:
        return batch_records
    table, label = labelled_rows(batch_path, batch.id_column or '', label_files)
    note: dict[str, Any] = {"labelled_rows": table.num_rows, "batch_rows": batch.row_count,
                            "label_files": len(label_files)}
    try:
        realised = evaluate(current=table, label=label, score=batch.score_column, sensitive=batch.sensitive,
                            threshold=threshold, resamples=0, max_groups=max_groups(),
                            intersections=batch.intersections)
    except MetricInputError as exc:  # e.g. the labelled rows hold one group only: realise the overall
        realised = evaluate(current=table, label=label, score=batch.score_column, threshold=threshold,
                            resamples=0, max_groups=max_groups())
        note["groups"] = f"no realised metrics per group: {exc}"
    have = {r.key() for r in batch_records.records}
    extra = tuple(r for r in realised.records if r.key() not in have)
    return MetricSet(batch_records.records + extra, {**batch_records.params, "realised": note})


def monitoring_rules(loaded: LoadedPolicy) -> LoadedPolicy | None:
    """The pack's rules on estimated metrics as a pack of their own, or None when it has none."""
    from policies.gate import is_monitoring_rule
    rules = [r for r in loaded.policy.rules if is_monitoring_rule(r)]
    return loaded.with_rules(rules) if rules else None


def judge(loaded: LoadedPolicy, metrics: MetricSet) -> GateDecision:
    from policies import run_gate
    return run_gate(policy=loaded, metrics=metrics, mode="dry_run", scope="monitoring")


def _key(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def queue_work(conn: duckdb.DuckDBPyConnection, loaded: LoadedPolicy, decision: GateDecision,
               evaluation: Evaluation, batch: PredictionSet, actor: str, now: datetime) -> tuple[list[str], list[str]]:
    """A monitor_alert item per broken rule (once per batch and rule) and one retraining job with the
    strategies their on_fail asks for (once per batch). Returns (item ids, job ids)."""
    from policies.schema import MetricRule
    rules = {r.id: r for r in loaded.policy.rules}
    pending: list[tuple[ReviewItem, str]] = []
    strategies: list[str] = []
    retrain_rules: list[str] = []
    for result in decision.results:
        rule = rules[result.rule_id]
        if result.status not in ("failed", "warned") or not isinstance(rule, MetricRule):
            continue
        evidence = {"rule": result.to_dict(), "policy": loaded.policy.name,
                    "policy_version": str(loaded.policy.version), "evaluation": evaluation.id,
                    "prediction_set": batch.id,
                    "batch_time": batch.batch_time.isoformat() if batch.batch_time else None}
        priority = Priority.BLOCKING if result.status == "failed" and rule.on_fail and rule.on_fail.retrain \
            else Priority.NORMAL
        judgments = rule.on_fail.review.judgments if rule.on_fail and rule.on_fail.review else 1
        key = _key(batch.id, "monitor_alert", rule.id)
        pending.append((ReviewItem(f"ri-{key[:12]}", batch.model, batch.version, ItemKind.MONITOR_ALERT, rule.id, None,
                                   priority, ItemStatus.OPEN, judgments, evidence, now, actor), key))
        if rule.on_fail and rule.on_fail.retrain:
            strategies += [s for s in rule.on_fail.retrain.strategies() if s not in strategies]
            retrain_rules.append(rule.id)
    item_ids = review_items.insert_items(conn, pending)
    job_ids: list[str] = []
    if strategies:
        blocking = [i for (item, _), i in zip(pending, item_ids) if item.priority == Priority.BLOCKING]
        status = JobStatus.WAITING_REVIEW if blocking else JobStatus.QUEUED
        # no gate queued it: the job names the monitoring evaluation that did
        job = Job(f"job-{uuid.uuid4().hex[:12]}", batch.model, batch.version, "retrain", status, strategies,
                  retrain_rules, blocking, evaluation.id, 0, now, now)
        job_ids.append(jobs.insert_job(conn, job, _key(batch.id, "monitor", "retrain", ",".join(strategies))))
    return item_ids, job_ids
