"""SQL of retraining jobs: queueing, leases, progress, search results and cancellation."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

import duckdb

from governance.records import Job, JobStatus, stored
from governance.store.rows import Row, one_int, one_row

_JOB = ("id, model, version, kind, status, strategies_json, failing_rules_json, depends_on_json, gate_decision_id, "
        "attempts, created_at, updated_at")
_SELECT_JOBS = f"SELECT {_JOB} FROM jobs"


def insert_job(conn: duckdb.DuckDBPyConnection, job: Job, dedupe_key: str) -> str:
    """The job queued for `dedupe_key`'s evidence: the one already there, unless that one failed or was
    cancelled; then it keeps its record under a retired key and `job` is queued (gating again is how a
    failed job is tried again). Not a job that failed for good: one that escalated (its version cannot be
    retrained as asked) stays the answer until the version changes, or it would fail again each gate."""
    found = conn.execute("SELECT id, status FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone()
    if found and found[1] not in (JobStatus.FAILED, JobStatus.CANCELLED):
        return cast(str, found[0])
    if found and one_int(conn, "SELECT count(*) FROM review_items WHERE dedupe_key = ?",
                         [f"escalation:job:{found[0]}"]):
        return cast(str, found[0])
    if found:
        conn.execute("UPDATE jobs SET dedupe_key = ? WHERE id = ?", [f"{dedupe_key} retired:{found[0]}", found[0]])
    conn.execute(
        f"INSERT INTO jobs (dedupe_key, {_JOB}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [dedupe_key, job.id, job.model, job.version, job.kind, job.status, json.dumps(job.strategies),
         json.dumps(job.failing_rules), json.dumps(job.depends_on), job.gate_decision_id, job.attempts,
         job.created_at, job.updated_at],
    )
    return cast(str, one_row(conn, "SELECT id FROM jobs WHERE dedupe_key = ?", [dedupe_key])[0])


def _job(row: Row) -> Job:
    values = list(row)
    values[4] = stored(JobStatus, values[4])
    values[5], values[6], values[7] = (json.loads(v) for v in values[5:8])
    return Job(*values)


def get_job(conn: duckdb.DuckDBPyConnection, job_id: str) -> Job | None:
    row = conn.execute(_SELECT_JOBS + " WHERE id = ?", [job_id]).fetchone()
    return _job(row) if row else None


def list_jobs(conn: duckdb.DuckDBPyConnection, *, status: str | None = None) -> list[Job]:
    rows = conn.execute(_SELECT_JOBS + " WHERE (? IS NULL OR status = ?) ORDER BY created_at, id",
                        [status, status]).fetchall()
    return [_job(row) for row in rows]


_JOB_STATE = "lease_owner, lease_expires_at, progress_json, cancel_requested, error, result_version"


def job_state(conn: duckdb.DuckDBPyConnection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {_JOB_STATE} FROM jobs WHERE id = ?", [job_id]).fetchone()
    if row is None:
        return None
    return _state(*row)


def _state(owner: str | None, expires: datetime | None, progress: str | None, cancel: bool | None, error: str | None,
           result: str | None) -> dict[str, Any]:
    return {"lease_owner": owner, "lease_expires_at": expires, "progress": json.loads(progress) if progress else None,
            "cancel_requested": bool(cancel), "error": error, "result_version": result}


def job_states(conn: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    """Every job's lease, progress, error and result, by job id (one query)."""
    return {row[0]: _state(*row[1:]) for row in conn.execute(f"SELECT id, {_JOB_STATE} FROM jobs").fetchall()}


def waiting_jobs_worked(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """(job id, the review items it waits for) of each waiting_review job whose items are all resolved or
    dismissed."""
    waiting = conn.execute("SELECT id, depends_on_json FROM jobs WHERE status = 'waiting_review' "
                           "ORDER BY id").fetchall()
    worked: list[tuple[str, list[str]]] = []
    for job_id, depends in waiting:
        items = json.loads(depends)
        open_count = one_int(conn, "SELECT count(*) FROM review_items WHERE list_contains(?, id) AND status IN "
                             "('open', 'claimed')", [items]) if items else 0
        if open_count == 0:
            worked.append((job_id, items))
    return worked


def wait_also_for(conn: duckdb.DuckDBPyConnection, kin: str, item_id: str) -> list[str]:
    """Make the waiting_review jobs that wait for item `kin` wait for `item_id` too; the jobs changed."""
    changed = []
    for job_id, depends in conn.execute("SELECT id, depends_on_json FROM jobs WHERE status = 'waiting_review' "
                                        "ORDER BY id").fetchall():
        items = json.loads(depends)
        if kin in items and item_id not in items:
            conn.execute("UPDATE jobs SET depends_on_json = ? WHERE id = ?", [json.dumps([*items, item_id]), job_id])
            changed.append(job_id)
    return changed


def queue_job(conn: duckdb.DuckDBPyConnection, job_id: str, now: datetime) -> None:
    conn.execute("UPDATE jobs SET status = 'queued', updated_at = ? WHERE id = ?", [now, job_id])


def claimable_job(conn: duckdb.DuckDBPyConnection, now: datetime, created_before: datetime | None = None) -> Job | None:
    row = conn.execute(_SELECT_JOBS + " WHERE (status = 'queued' OR (status = 'running' AND lease_expires_at < ?)) "
                       "AND (CAST(? AS TIMESTAMP) IS NULL OR created_at <= ?) ORDER BY created_at, id LIMIT 1",
                       [now, created_before, created_before]).fetchone()
    return _job(row) if row else None


def set_job_search(conn: duckdb.DuckDBPyConnection, job_id: str, search: dict[str, Any]) -> None:
    """What a retraining search aimed at (`rules`: the policy's bounds) and the `candidates` it tried."""
    conn.execute("UPDATE jobs SET search_json = ? WHERE id = ?", [json.dumps(search, default=str), job_id])


def searched_jobs(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Ids of the jobs whose search tried candidates."""
    return {row[0] for row in conn.execute("SELECT id FROM jobs WHERE search_json IS NOT NULL").fetchall()}


def job_search(conn: duckdb.DuckDBPyConnection, job_id: str) -> dict[str, Any]:
    row = conn.execute("SELECT search_json FROM jobs WHERE id = ?", [job_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def take_job(conn: duckdb.DuckDBPyConnection, job_id: str, worker: str, now: datetime, expires: datetime) -> bool:
    """Lease the job to `worker` unless someone else holds a live lease (one conditional UPDATE)."""
    count = one_int(
        conn, "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, "
        "updated_at = ? WHERE id = ? AND (status = 'queued' OR (status = 'running' AND lease_expires_at < ?))",
        [worker, expires, now, job_id, now])
    return count == 1


def heartbeat(conn: duckdb.DuckDBPyConnection, job_id: str, worker: str, now: datetime, expires: datetime,
              progress: dict[str, Any]) -> bool | None:
    """Extend the lease; None if `worker` no longer holds it, else whether cancellation was asked."""
    row = conn.execute("UPDATE jobs SET lease_expires_at = ?, progress_json = ?, updated_at = ? "
                       "WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING cancel_requested",
                       [expires, json.dumps(progress, default=str), now, job_id, worker]).fetchone()
    return None if row is None else bool(row[0])


def finish_job(conn: duckdb.DuckDBPyConnection, job_id: str, status: str, now: datetime, *, error: str | None = None,
               result_version: str | None = None) -> None:
    conn.execute("UPDATE jobs SET status = ?, error = ?, result_version = ?, lease_owner = NULL, "
                 "lease_expires_at = NULL, updated_at = ? WHERE id = ?", [status, error, result_version, now, job_id])


def finish_leased_job(conn: duckdb.DuckDBPyConnection, job_id: str, worker: str, status: str, now: datetime, *,
                      error: str | None = None) -> bool:
    """Finish a running job only while `worker` holds its lease; False (nothing written) where it does not: a
    worker that lost its lease had overwritten the result of the worker that finished the job after it."""
    row = conn.execute("UPDATE jobs SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL, "
                       "updated_at = ? WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING id",
                       [status, error, now, job_id, worker]).fetchone()
    return row is not None


def request_cancel(conn: duckdb.DuckDBPyConnection, job_id: str, now: datetime) -> None:
    conn.execute("UPDATE jobs SET cancel_requested = true, updated_at = ? WHERE id = ?", [now, job_id])
