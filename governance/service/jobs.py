"""Retraining jobs: leases and heartbeats for workers, cancellation, and the retraining itself."""

from __future__ import annotations

import os
import socket
import time
import traceback
import uuid
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any, Callable

import duckdb
import numpy as np
import pandas as pd

from evaluation import MetricSet
from governance.aim import Aim
from governance.errors import Conflict, GovernError, InvalidInput, NotFound
from governance.faults import failpoint
from governance.records import Job, ReviewItem, Version
from governance.roles import Action
from governance.service.base import ServiceBase, _now, _require_version
from governance.service.gates import GateOutcome
from governance.service.training import ROW_ID, read_table, split_rows
from governance.store import evaluations, gates, jobs, registry, review_items
from policies.schema import MetricRule
from training.search import search

LEASE_SECONDS = 60
MAX_ATTEMPTS = 3
FEEDBACK_WEIGHT = 2.0
EVAL_RESAMPLES = 200  # bootstrap resamples of a retrained version's evaluation, as `govern evaluate`


class JobCancelled(Exception):
    pass


class LeaseLost(Exception):
    pass


class JobActions(ServiceBase):
    def show_job(self, *, job_id: str) -> dict[str, Any]:
        def unit(conn: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            self._authorize(conn, Action.VIEW)
            job = jobs.get_job(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id!r} does not exist; `govern jobs list` shows them.")
            tried = jobs.job_search(conn, job_id)
            return job.to_dict() | jobs.job_state(conn, job_id) | {"candidates": tried.get("candidates", []),
                                                                     "aim": tried.get("rules", {})}

        return self._run(unit)

    def job_overview(self) -> list[dict[str, Any]]:
        """Every job with its lease, progress, error, resulting version and whether its search stored
        candidates (show_job gives one job, candidates included)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
            self._authorize(conn, Action.VIEW)
            states, searched = jobs.job_states(conn), jobs.searched_jobs(conn)
            return [job.to_dict() | states.get(job.id, {}) | {"searched": job.id in searched}
                    for job in jobs.list_jobs(conn)]

        return self._run(unit)

    def cancel_job(self, *, job_id: str) -> dict[str, Any]:
        """Cancel a waiting or queued job now; ask a running one to stop at its next epoch."""
        def unit(conn: duckdb.DuckDBPyConnection) -> None:
            self._authorize(conn, Action.EVALUATE)
            job = jobs.get_job(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id!r} does not exist; `govern jobs list` shows them.")
            if job.status in ("succeeded", "failed", "cancelled"):
                raise Conflict(f"job {job_id} already {job.status}.")
            if job.status == "running":
                jobs.request_cancel(conn, job_id, _now())
            else:
                jobs.finish_job(conn, job_id, "cancelled", _now(), error="cancelled before it ran")
            self._log(conn, "job.cancel", f"job:{job_id}", {"was": job.status})

        self._run(unit)
        return self.show_job(job_id=job_id)

    def claim_job(self, *, worker: str, lease_seconds: int = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS,
                  created_before=None) -> Job | None:
        """Lease the oldest runnable job (queued, or running with a lapsed lease) to `worker`; with
        `created_before`, only a job created by then.

        A job whose lease lapsed `max_attempts` times is failed instead, its last worker presumed dead.
        """
        def unit(conn: duckdb.DuckDBPyConnection) -> Job | None:
            self._authorize(conn, Action.EVALUATE)
            now = _now()
            for job_id in jobs.promote_waiting_jobs(conn, now):
                self._log(conn, "job.queue", f"job:{job_id}", {"reason": "its review items are done"})
            while (job := jobs.claimable_job(conn, now, created_before)) is not None:
                if job.status == "running" and job.attempts >= max_attempts:
                    jobs.finish_job(conn, job.id, "failed", now, error=f"its worker stopped answering "
                                     f"{job.attempts} times (lease lapsed)")
                    self._log(conn, "job.fail", f"job:{job.id}", {"attempts": job.attempts})
                    continue
                if jobs.take_job(conn, job.id, worker, now, now + timedelta(seconds=lease_seconds)):
                    self._log(conn, "job.claim", f"job:{job.id}", {"worker": worker, "attempt": job.attempts + 1})
                    return jobs.get_job(conn, job.id)
                return None
            return None

        return self._run(unit)

    def _heartbeat(self, job_id: str, worker: str, lease_seconds: int, progress: dict) -> None:
        now = _now()
        cancel = self._run(lambda conn: jobs.heartbeat(conn, job_id, worker, now,
                                                        now + timedelta(seconds=lease_seconds), progress))
        if cancel is None:
            raise LeaseLost(f"worker {worker} lost the lease on job {job_id}")
        if cancel:
            raise JobCancelled()

    def _finish(self, job_id: str, status: str, *, error: str | None = None, result: str | None = None,
                escalate: bool = False) -> str | None:
        """Record how the job ended; with `escalate` (a job that cannot succeed as asked: its version was
        not trained by govern, its artifact or data are unusable) also file an escalation item for
        engineers, the loop's way of saying it stopped. Returns that item's id."""
        def unit(conn: duckdb.DuckDBPyConnection) -> str | None:
            jobs.finish_job(conn, job_id, status, _now(), error=error, result_version=result)
            self._log(conn, f"job.{'succeed' if status == 'succeeded' else status}", f"job:{job_id}",
                      {"error": error, "version": result})
            if not escalate:
                return None
            job = jobs.get_job(conn, job_id)
            evidence = {"reason": f"the retraining job {job_id} failed: {error}", "job": job_id,
                        "failing_rules": job.failing_rules, "strategies": job.strategies,
                        "gate": job.gate_decision_id}
            user = self._authorize(conn, Action.EVALUATE)
            item = ReviewItem(f"ri-{uuid.uuid4().hex[:12]}", job.model, job.version, "escalation", None,
                              job.gate_decision_id, "blocking", "open", 1, evidence, _now(), user.name)
            [item_id] = review_items.insert_items(conn, [(item, f"escalation:job:{job_id}")])
            self._log(conn, "loop.escalate", f"version:{job.model}/{job.version}",
                      {"item": item_id, "reason": evidence["reason"], "job": job_id})
            return item_id

        return self._run(unit)

    def run_worker(self, *, once: bool = False, max_jobs: int | None = None, lease_seconds: int = LEASE_SECONDS,
                   max_attempts: int = MAX_ATTEMPTS, poll_seconds: float = 2.0,
                   report: Callable[[str], None] = lambda line: None) -> list[dict[str, Any]]:
        """Claim and run jobs until none is left or `max_jobs` ran; returns what each did. With `once`,
        only jobs queued when the worker started (or waiting on reviews then) run: the jobs their gates
        queue wait for the next run, so one call is one round of the loop and always ends."""
        worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        started = _now() if once else None
        done: list[dict[str, Any]] = []
        while max_jobs is None or len(done) < max_jobs:
            job = self.claim_job(worker=worker, lease_seconds=lease_seconds, max_attempts=max_attempts,
                                 created_before=started)
            if job is None:
                if once:
                    break
                time.sleep(poll_seconds)
                continue
            report(f"{job.id}: retraining {job.model} version {job.version} with {'+'.join(job.strategies)} "
                   f"(attempt {job.attempts})")
            done.append(self._run_claimed(job, worker, lease_seconds, report))
        return done

    def _run_claimed(self, job: Job, worker: str, lease_seconds: int, report) -> dict[str, Any]:
        def progress(epoch: int, total: int, record: dict) -> bool:
            self._heartbeat(job.id, worker, lease_seconds, {"epoch": epoch, "epochs": total, **record})
            report(f"  model {record.get('model', 1)}: epoch {epoch}/{total}  "
                   f"validation loss {record.get('validation_loss', 0):.4f}")
            failpoint("train.epoch")
            return True

        try:
            version, outcome = self.retrain(job, worker=worker, progress=progress, report=report)
        except JobCancelled:
            self._finish(job.id, "cancelled", error="cancelled while running")
            return {"job": job.id, "status": "cancelled"}
        except LeaseLost as exc:
            return {"job": job.id, "status": "abandoned", "error": str(exc)}
        except Exception as exc:  # a job's failure is recorded, not raised: the worker goes on
            detail = exc if isinstance(exc, GovernError) else "".join(traceback.format_exception_only(exc)).strip()
            # What no retry can fix (the version, its artifact or its data) goes to an engineer.
            escalation = self._finish(job.id, "failed", error=str(detail),
                                      escalate=isinstance(exc, (InvalidInput, NotFound)))
            return {"job": job.id, "status": "failed", "error": str(detail),
                    "escalations": [escalation] if escalation else []}
        blocked = [r.rule_id for r in outcome.decision.results if r.blocking]
        report(f"{job.model} version {version.version}: gate {outcome.decision.verdict.upper()}"
               + (f" by {', '.join(blocked)}" if blocked else "")
               + (f"; queued job {', '.join(outcome.jobs)}" if outcome.jobs else "")
               + (f"; escalated ({', '.join(outcome.escalations)})" if outcome.escalations else ""))
        return {"job": job.id, "status": "succeeded", "version": version.version,
                "verdict": outcome.decision.verdict, "blocked_by": blocked, "jobs": outcome.jobs,
                "escalations": outcome.escalations}

    def retrain(self, job: Job, *, worker: str | None = None, progress: Callable | None = None,
                report: Callable[[str], None] = lambda line: None) -> tuple[Version, GateOutcome]:
        """Train the job's new version: the parent's data and split, reviewers' corrections folded in
        (corrected rows join the training rows, upweighted), a search over the job's strategies and
        their strength judged against the model's binding policy on a validation split (see
        training.search). Then, in one unit of work, the version is registered with its predictions,
        evaluated against the parent's reference, gated, and the job finished: a retrained version
        appears whole or not at all. With `worker`, the job must still be leased to it then."""
        parent = self.load_trained(model=job.model, version=job.version)
        meta = parent.meta
        detail = self.show_version(model=job.model, version=job.version)
        data_path = self.artifacts.open_path(detail.version.training_data_sha256)
        frame = read_table(data_path)
        train_rows, eval_rows = split_rows(len(frame), meta["eval_fraction"], meta["split_seed"])
        feedback = self.build_feedback(model=job.model)
        corrections = self._corrections(feedback["sha256"])
        frame[ROW_ID] = np.arange(len(frame))
        weights = np.ones(len(frame))
        corrected_rows = np.array(sorted(r for r in corrections if 0 <= r < len(frame)), dtype=np.int64)
        if len(corrected_rows):
            frame.loc[corrected_rows, meta["label"]] = [corrections[r] for r in corrected_rows]
            weights[corrected_rows] = FEEDBACK_WEIGHT
            train_rows = np.union1d(train_rows, corrected_rows)
            eval_rows = np.setdiff1d(eval_rows, corrected_rows)
        # The parent's own strategies stay: recalibrating a fairness-penalised parent must not drop the penalty.
        strategies = tuple(dict.fromkeys([*parent.config.strategies, *job.strategies]))
        config = replace(parent.config, strategies=strategies, sensitive=tuple(meta["sensitive"]))
        aim = self._aim(job, meta)
        report(f"  searching {'+'.join(strategies)} against {aim.policy_name}: blocking rules "
               f"{', '.join(aim.rule_ids) or 'none that a model can change'}")
        found = search(frame.iloc[train_rows], label=meta["label"], features=meta["features"], config=config,
                       judge=aim.judge, offsets_for=aim.offsets_for,
                       threshold=aim.threshold, sample_weights=weights[train_rows], on_epoch=progress, report=report)
        trained, chosen = found.model, found.chosen
        trained.meta = meta
        report(f"  chosen: {chosen.strategy} ({'passes' if chosen.passes else 'closest to passing'} on validation)")
        candidates = [c.to_dict() for c in found.candidates]
        lineage = {"job": job.id, "gate": job.gate_decision_id, "failing_rules": job.failing_rules,
                   "strategies": list(strategies), "feedback": {k: feedback[k] for k in ("version", "sha256",
                                                                                       "corrections")},
                   "corrections_applied": int(len(corrected_rows)), "config": asdict(trained.config),
                   "seed": config.seed, "search": {"chosen": chosen.to_dict(), "candidates": len(candidates)}}
        reference = self._run(lambda conn: registry.latest_prediction_set(conn, job.model, job.version, "reference")
                              or registry.latest_prediction_set(conn, job.model, job.version, "eval"))
        outcome: list[GateOutcome] = []

        def measure(eval_set, challenger_set) -> tuple[MetricSet, MetricSet]:
            # the challenger as `govern evaluate` measures one: same options, no drift
            return tuple(self._compute(s, r, resamples=EVAL_RESAMPLES, seed=0, threshold=aim.threshold)
                         for s, r in ((eval_set, reference), (challenger_set, None)))

        def settle(conn: duckdb.DuckDBPyConnection, version: Version, eval_set, challenger_set,
                   measured: tuple[MetricSet, MetricSet]) -> None:
            if worker is not None:
                state = jobs.job_state(conn, job.id)
                if state is None or state["lease_owner"] != worker:
                    raise LeaseLost(f"worker {worker} lost the lease on job {job.id} before publishing")
            for predictions, against, metric_set in zip((eval_set, challenger_set), (reference, None), measured):
                self._insert_evaluation(conn, self._new_evaluation(job.model, version.version, predictions, against,
                                                                   metric_set), metric_set)
            # before the gate: an escalation quotes them
            jobs.set_job_search(conn, job.id, {"policy": aim.policy_name, "rules": aim.bounds(),
                                                "candidates": candidates})
            outcome.append(self._gate_within(conn, job.model, version.version, eval_set))
            jobs.finish_job(conn, job.id, "succeeded", _now(), result_version=version.version)
            self._log(conn, "job.succeed", f"job:{job.id}", {"error": None, "version": version.version,
                                                             "chosen": chosen.strategy,
                                                             "candidates": len(candidates)})

        result = self._publish(model=job.model, version=None, frame=frame, train_rows=train_rows,
                               eval_rows=eval_rows, trained=trained, data=data_path, parent=job.version,
                               lineage=lineage, corrections=int(len(corrected_rows)), weights=weights,
                               measure=measure, settle=settle)
        return result.version, outcome[-1]

    def _aim(self, job: Job, meta: dict) -> Aim:
        """What the search judges candidates by: the blocking metric rules of the model's binding policy
        that a model can change (not drift, approvals or open reviews), on the sensitive columns the
        model was trained with, at the threshold the parent was evaluated with."""
        def read(conn: duckdb.DuckDBPyConnection):
            loaded = self._binding(conn, job.model, None)
            parent_eval = evaluations.latest_evaluation(conn, job.model, job.version)
            # the parent's baselines: the new version (and its own challenger) does not exist yet
            baselines = {rule.baseline: self._baseline(conn, job.model, rule.baseline, job.version)
                         for rule in loaded.policy.rules
                         if isinstance(rule, MetricRule) and rule.max_regression is not None}
            return loaded, parent_eval, baselines, gates.get_gate(conn, job.gate_decision_id)

        loaded, parent_eval, baselines, queued_by = self._run(read)
        threshold = float((parent_eval.params if parent_eval else {}).get("threshold", 0.5))
        # The columns whose groups failed the flagged rules: where group offsets are worth trying.
        failing = {column for result in (queued_by.decision.get("results", []) if queued_by else [])
                   if result["rule_id"] in job.failing_rules for column in _failing_columns(result)}
        return Aim.of(loaded, baselines, label=meta["label"], sensitive=list(meta["sensitive"]), threshold=threshold,
                      flagged=job.failing_rules, failing_columns=failing,
                      eval_rows=(parent_eval.params or {}).get("rows") if parent_eval else None,
                      intersections=meta.get("intersections", ()))

    def _corrections(self, sha256: str) -> dict[int, int]:
        """row → corrected label from a feedback dataset (rows are positions in the training file)."""
        frame = pd.read_parquet(self.artifacts.open_path(sha256))
        return {int(i): int(label) for i, label in zip(frame["id"], frame["corrected_label"]) if str(i).isdigit()}

    def lineage(self, *, model: str, version: str) -> list[Version]:
        """The version and its ancestors, newest first."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[Version]:
            self._authorize(conn, Action.VIEW)
            _require_version(conn, model, version)
            return registry.lineage(conn, model, version)

        return self._run(unit)


def _failing_columns(result: dict) -> list[str]:
    """The sensitive columns a stored rule result failed on (decisions stored before `failing` existed
    name them as "feature=group" or "feature" in failing_groups)."""
    if "failing" in result:
        return [f["feature"] for f in result["failing"] if f.get("feature")]
    return [name.split("=", 1)[0] for name in result.get("failing_groups") or []]
