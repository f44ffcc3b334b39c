"""Retraining jobs: leases and heartbeats for workers, cancellation; a claimed job runs `Retraining`."""

from __future__ import annotations

import math
import os
import socket
import time
import traceback
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

import duckdb

from governance.errors import Conflict, GovernError, InvalidInput, NotAllowed, NotFound, StoreBusy
from governance.faults import failpoint
from governance.records import GateVerdict, ItemStatus, Job, JobDetail, JobRun, JobStatus, Priority, ReviewItem, Version
from governance.roles import Action, authorize
from governance.service.base import ServiceBase, _now, _present, job_as_seen_by
from governance.service.retraining import LeaseLost, Retraining
from governance.store import jobs, registry, review_items

if TYPE_CHECKING:
    pass

LEASE_SECONDS = 60
MAX_ATTEMPTS = 3
HEARTBEAT_SECONDS = 1.0  # at most one heartbeat a second; a lease is at least 5


class JobCancelled(Exception):
    pass


class JobActions(ServiceBase):
    retraining: Retraining  # what runs a claimed job: composed by Service with the actions it calls
    def show_job(self, *, job_id: str) -> JobDetail:
        def unit(conn: duckdb.DuckDBPyConnection) -> JobDetail:
            user = self._authorize(conn, Action.VIEW)
            job = jobs.get_job(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id!r} does not exist; `govern jobs list` shows them.")
            job = job_as_seen_by(job, user)
            tried = jobs.job_search(conn, job_id)
            return JobDetail(job, **(jobs.job_state(conn, job_id) or {}), searched=bool(tried.get("candidates")),
                             candidates=tried.get("candidates", []), aim=tried.get("rules", {}))

        return self._run(unit)

    def job_overview(self) -> list[JobDetail]:
        """Every job with its lease, progress, error, resulting version and whether its search stored
        candidates (show_job gives one job, candidates included)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> list[JobDetail]:
            user = self._authorize(conn, Action.VIEW)
            states, searched = jobs.job_states(conn), jobs.searched_jobs(conn)
            return [JobDetail(job_as_seen_by(job, user), **states.get(job.id, {}), searched=job.id in searched)
                    for job in jobs.list_jobs(conn)]

        return self._run(unit)

    def cancel_job(self, *, job_id: str) -> JobDetail:
        """Cancel a waiting or queued job now; ask a running one to stop (it notices at its next heartbeat,
        within about a second, at an epoch's end)."""
        def unit(conn: duckdb.DuckDBPyConnection) -> None:
            self._authorize(conn, Action.EVALUATE)
            job = jobs.get_job(conn, job_id)
            if job is None:
                raise NotFound(f"job {job_id!r} does not exist; `govern jobs list` shows them.")
            if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
                raise Conflict(f"job {job_id} already {job.status}.")
            if job.status == JobStatus.RUNNING:
                jobs.request_cancel(conn, job_id, _now())
            else:
                jobs.finish_job(conn, job_id, "cancelled", _now(), error="cancelled before it ran")
            self._log(conn, "job.cancel", f"job:{job_id}", {"was": job.status})

        self._run(unit)
        return self.show_job(job_id=job_id)

    def claim_job(self, *, worker: str, lease_seconds: int = LEASE_SECONDS, max_attempts: int = MAX_ATTEMPTS,
                  created_before: datetime | None = None) -> Job | None:
        """Lease the oldest runnable job (queued, or running with a lapsed lease) to `worker`; with
        `created_before`, only a job created by then.

        A job whose lease lapsed `max_attempts` times is failed instead, its last worker presumed dead.
        """
        def unit(conn: duckdb.DuckDBPyConnection) -> Job | None:
            self._authorize(conn, Action.EVALUATE)
            now = _now()
            self._queue_ready_jobs(conn, now)
            while (job := jobs.claimable_job(conn, now, created_before)) is not None:
                if job.status == JobStatus.RUNNING and job.attempts >= max_attempts:
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

    def _heartbeat(self, job_id: str, worker: str, lease_seconds: int, progress: dict[str, Any]) -> None:
        """Renew the lease, as a user still allowed to run jobs (a disabled user's worker had trained on and
        written the job's end to the log)."""
        now = _now()

        def unit(conn: duckdb.DuckDBPyConnection) -> bool | None:
            self._authorize(conn, Action.EVALUATE)
            return jobs.heartbeat(conn, job_id, worker, now, now + timedelta(seconds=lease_seconds), progress)

        cancel = self._run(unit)
        if cancel is None:
            raise LeaseLost(f"worker {worker} lost the lease on job {job_id}")
        if cancel:
            raise JobCancelled()

    def _finish(self, job_id: str, worker: str, status: str, *, error: str | None = None,
                escalate: bool = False) -> str | None:
        """Record how the job `worker` ran ended, while it still holds the lease (else LeaseLost: another
        worker's result stands); with `escalate` (a job that cannot succeed as asked: its version was not
        trained by govern, its artifact or data are unusable) also file an escalation item for engineers, the
        loop's way of saying it stopped. Returns that item's id."""
        def unit(conn: duckdb.DuckDBPyConnection) -> str | None:
            self._authorize(conn, Action.EVALUATE)
            if not jobs.finish_leased_job(conn, job_id, worker, status, _now(), error=error):
                raise LeaseLost(f"worker {worker} lost the lease on job {job_id} before recording that it {status}")
            self._log(conn, f"job.{'succeed' if status == 'succeeded' else status}", f"job:{job_id}",
                      {"error": error, "version": None})
            if not escalate:
                return None
            job = _present(jobs.get_job(conn, job_id), f"job {job_id}")  # the job it just finished
            evidence = {"reason": f"the retraining job {job_id} failed: {error}", "job": job_id,
                        "failing_rules": job.failing_rules, "strategies": job.strategies,
                        "gate": job.gate_decision_id}
            user = self._authorize(conn, Action.EVALUATE)
            item = ReviewItem(f"ri-{uuid.uuid4().hex[:12]}", job.model, job.version, "escalation", None,
                              job.gate_decision_id, Priority.BLOCKING, ItemStatus.OPEN, 1, evidence, _now(), user.name)
            [item_id] = review_items.insert_items(conn, [(item, f"escalation:job:{job_id}")])
            self._log(conn, "loop.escalate", f"version:{job.model}/{job.version}",
                      {"item": item_id, "reason": evidence["reason"], "job": job_id})
            return item_id

        return self._run(unit)

    def run_worker(self, *, once: bool = False, max_jobs: int | None = None, lease_seconds: int = LEASE_SECONDS,
                   max_attempts: int = MAX_ATTEMPTS, poll_seconds: float = 2.0,
                   report: Callable[[str], None] = lambda line: None) -> list[JobRun]:
        """Claim and run jobs until none is left or `max_jobs` ran; returns what each did. With `once`,
        only jobs queued when the worker started (or waiting on reviews then) run: the jobs their gates
        queue wait for the next run, so one call is one round of the loop and always ends."""
        worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        user = self._run(lambda conn: self._identify(conn, Action.EVALUATE))  # who, settled first: a bad
        try:  # credential is said as it is; a role that may not run jobs is told what a worker does
            authorize(user=user.name, role=user.role, action=Action.EVALUATE)
        except NotAllowed as exc:
            raise NotAllowed(f"a worker runs retraining jobs, which train, evaluate and gate versions; {exc}") from exc
        started = _now() if once else None
        done: list[JobRun] = []
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

    def _run_claimed(self, job: Job, worker: str, lease_seconds: int, report: Callable[[str], None]) -> JobRun:
        beat = [-math.inf]  # when the last heartbeat was written (monotonic seconds)

        def progress(epoch: int, total: int, record: dict[str, Any]) -> bool:
            # A heartbeat opens the store (about 15 ms): one a second renews the lease and notices a cancel
            # as well as one per epoch, where a search's small epochs would spend seconds on them.
            if time.monotonic() - beat[0] >= HEARTBEAT_SECONDS:
                self._heartbeat(job.id, worker, lease_seconds, {"epoch": epoch, "epochs": total, **record})
                beat[0] = time.monotonic()
            report(f"  model {record.get('model', 1)}: epoch {epoch}/{total}  "
                   f"validation loss {record.get('validation_loss', 0):.4f}")
            failpoint("train.epoch")
            return True

        try:
            try:
                version, outcome = self.retraining.retrain(job, worker=worker, progress=progress, report=report)
            except JobCancelled:
                self._finish(job.id, worker, "cancelled", error="cancelled while running")
                return JobRun(job.id, JobStatus.CANCELLED)
            except (LeaseLost, NotAllowed, StoreBusy):
                raise
            except Exception as exc:  # a job's failure is recorded, not raised: the worker goes on
                detail = exc if isinstance(exc, GovernError) else "".join(traceback.format_exception_only(exc)).strip()
                # What no retry can fix (the version, its artifact or its data) goes to an engineer.
                escalation = self._finish(job.id, worker, "failed", error=str(detail),
                                          escalate=isinstance(exc, (InvalidInput, NotFound)))
                return JobRun(job.id, JobStatus.FAILED, error=str(detail),
                              escalations=[escalation] if escalation else [])
        except LeaseLost as exc:  # another worker has the job now: its result stands, nothing is written here
            return JobRun(job.id, "abandoned", error=str(exc))
        except StoreBusy as exc:  # not the job's failure: its lease lapses and a worker retries it
            return JobRun(job.id, "abandoned", error=f"{exc} The job stays running until its lease lapses; a worker "
                                                     "then retries it.")
        blocked = [r.rule_id for r in outcome.decision.results if r.blocking]
        report(f"{job.model} version {version.version}: gate {outcome.decision.verdict.upper()}"
               + (f" by {', '.join(blocked)}" if blocked else "")
               + (f"; queued job {', '.join(outcome.jobs)}" if outcome.jobs else "")
               + (f"; escalated ({', '.join(outcome.escalations)})" if outcome.escalations else ""))
        return JobRun(job.id, JobStatus.SUCCEEDED, version=version.version,
                      verdict=GateVerdict(outcome.decision.verdict), blocked_by=blocked, jobs=outcome.jobs,
                      escalations=outcome.escalations)

    def lineage(self, *, model: str, version: str) -> list[Version]:
        """The version and its ancestors, newest first."""
        return self._read(Action.VIEW, lambda conn: registry.lineage(conn, model, version), require=(model, version))
