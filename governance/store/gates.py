"""SQL of gate decisions, review items, jobs and model aliases."""

from __future__ import annotations

import json

import duckdb

from governance.records import GateRecord, Job, ReviewItem

_ITEM = ("id, model, version, kind, rule_id, gate_decision_id, priority, status, judgments_required, "
         "evidence_json, created_at, created_by")
_ITEM_READ = _ITEM + ", assignee, claim_expires_at, due_at, gold_json IS NOT NULL, resolved_at"
_JOB = ("id, model, version, kind, status, strategies_json, failing_rules_json, depends_on_json, gate_decision_id, "
        "attempts, created_at, updated_at")
_GATE = ("id, model, version, evaluation_id, policy_name, policy_version, policy_sha256, metrics_sha256, verdict, "
         "decision_json, created_at, created_by")
_SELECT_ITEMS = f"SELECT {_ITEM_READ} FROM review_items"
_SELECT_JOBS = f"SELECT {_JOB} FROM jobs"
_SELECT_GATES = f"SELECT {_GATE} FROM gate_decisions"


def get_alias(conn: duckdb.DuckDBPyConnection, model: str, alias: str) -> str | None:
    row = conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", [model, alias]).fetchone()
    return row[0] if row else None


def insert_gate(conn: duckdb.DuckDBPyConnection, gate: GateRecord) -> None:
    conn.execute(
        f"INSERT INTO gate_decisions ({_GATE}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [gate.id, gate.model, gate.version, gate.evaluation_id, gate.policy_name, gate.policy_version,
         gate.policy_sha256, gate.metrics_sha256, gate.verdict, json.dumps(gate.decision, sort_keys=True),
         gate.created_at, gate.created_by],
    )


def latest_gate(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> GateRecord | None:
    row = conn.execute(_SELECT_GATES + " WHERE model = ? AND version = ? ORDER BY created_at DESC, id DESC LIMIT 1",
                       [model, version]).fetchone()
    return _gate(row) if row else None


def get_gate(conn: duckdb.DuckDBPyConnection, gate_id: str) -> GateRecord | None:
    row = conn.execute(_SELECT_GATES + " WHERE id = ?", [gate_id]).fetchone()
    return _gate(row) if row else None


def _gate(row: tuple) -> GateRecord:
    values = list(row)
    values[9] = json.loads(values[9])
    return GateRecord(*values)


def insert_items(conn: duckdb.DuckDBPyConnection, items: list[tuple[ReviewItem, str]]) -> list[str]:
    """Insert (item, dedupe key) pairs, skipping keys already queued; return the id holding each key."""
    if not items:
        return []
    # Portable "skip keys already queued" (DuckLake has no UNIQUE for ON CONFLICT): the unit's audit append
    # serialises concurrent gates, so the check cannot race.
    keys = [key for _, key in items]
    queued = {row[0] for row in conn.execute("SELECT dedupe_key FROM review_items WHERE list_contains(?, dedupe_key)",
                                             [keys]).fetchall()}
    fresh = {}
    for item, key in items:
        if key not in queued:
            fresh.setdefault(key, item)
    if fresh:
        conn.executemany(
            f"INSERT INTO review_items (dedupe_key, {_ITEM}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[key, i.id, i.model, i.version, i.kind, i.rule_id, i.gate_decision_id, i.priority, i.status,
              i.judgments_required, json.dumps(i.evidence, sort_keys=True, default=str), i.created_at, i.created_by]
             for key, i in fresh.items()],
        )
    holders = dict(conn.execute("SELECT dedupe_key, id FROM review_items WHERE list_contains(?, dedupe_key)",
                                [keys]).fetchall())
    return [holders[key] for key in keys]


def existing_keys(conn: duckdb.DuckDBPyConnection, keys: list[str]) -> set[str]:
    """The dedupe keys among `keys` already queued as review items."""
    return {row[0] for row in conn.execute("SELECT dedupe_key FROM review_items WHERE list_contains(?, dedupe_key)",
                                           [keys]).fetchall()}


def insert_job(conn: duckdb.DuckDBPyConnection, job: Job, dedupe_key: str) -> str:
    found = conn.execute("SELECT id FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone()
    if found:
        return found[0]
    conn.execute(
        f"INSERT INTO jobs (dedupe_key, {_JOB}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [dedupe_key, job.id, job.model, job.version, job.kind, job.status, json.dumps(job.strategies),
         json.dumps(job.failing_rules), json.dumps(job.depends_on), job.gate_decision_id, job.attempts,
         job.created_at, job.updated_at],
    )
    return conn.execute("SELECT id FROM jobs WHERE dedupe_key = ?", [dedupe_key]).fetchone()[0]


def item_from_row(row: tuple) -> ReviewItem:
    values = list(row)
    values[9] = json.loads(values[9])
    return ReviewItem(*values)


def _job(row: tuple) -> Job:
    values = list(row)
    values[5], values[6], values[7] = (json.loads(v) for v in values[5:8])
    return Job(*values)


def list_items(conn: duckdb.DuckDBPyConnection, *, model: str | None = None, version: str | None = None,
               status: str | None = None, kind: str | None = None) -> list[ReviewItem]:
    rows = conn.execute(
        _SELECT_ITEMS + " WHERE (? IS NULL OR model = ?) AND (? IS NULL OR version = ?) AND (? IS NULL OR status = ?) "
        "AND (? IS NULL OR kind = ?) ORDER BY created_at, rule_id, kind DESC, id",
        [model, model, version, version, status, status, kind, kind]).fetchall()
    return [item_from_row(row) for row in rows]


def count_open_items(conn: duckdb.DuckDBPyConnection, model: str, version: str) -> int:
    return conn.execute("SELECT count(*) FROM review_items WHERE model = ? AND version = ? AND status IN "
                        "('open', 'claimed')", [model, version]).fetchone()[0]


def list_jobs(conn: duckdb.DuckDBPyConnection, *, status: str | None = None) -> list[Job]:
    rows = conn.execute(_SELECT_JOBS + " WHERE (? IS NULL OR status = ?) ORDER BY created_at, id",
                        [status, status]).fetchall()
    return [_job(row) for row in rows]


def set_alias(conn: duckdb.DuckDBPyConnection, *, model: str, alias: str, version: str, actor: str) -> None:
    """Point `alias` (production) at `version`; the caller logs the move in the same transaction."""
    conn.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", [model, alias])
    conn.execute("INSERT INTO aliases (model, alias, version, set_at, set_by) VALUES (?, ?, ?, now()::TIMESTAMP, ?)",
                 [model, alias, version, actor])


def set_policy_text(conn: duckdb.DuckDBPyConnection, gate_id: str, text: str) -> None:
    conn.execute("UPDATE gate_decisions SET policy_text = ? WHERE id = ?", [text, gate_id])


def policy_text(conn: duckdb.DuckDBPyConnection, gate_id: str) -> str | None:
    row = conn.execute("SELECT policy_text FROM gate_decisions WHERE id = ?", [gate_id]).fetchone()
    return row[0] if row else None


_JOB_STATE = "lease_owner, lease_expires_at, progress_json, cancel_requested, error, result_version"


def job_state(conn: duckdb.DuckDBPyConnection, job_id: str) -> dict | None:
    row = conn.execute(f"SELECT {_JOB_STATE} FROM jobs WHERE id = ?", [job_id]).fetchone()
    if row is None:
        return None
    return _state(*row)


def _state(owner, expires, progress, cancel, error, result) -> dict:
    return {"lease_owner": owner, "lease_expires_at": expires, "progress": json.loads(progress) if progress else None,
            "cancel_requested": bool(cancel), "error": error, "result_version": result}


def job_states(conn: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Every job's lease, progress, error and result, by job id (one query)."""
    return {row[0]: _state(*row[1:]) for row in conn.execute(f"SELECT id, {_JOB_STATE} FROM jobs").fetchall()}


def get_job(conn: duckdb.DuckDBPyConnection, job_id: str) -> Job | None:
    row = conn.execute(_SELECT_JOBS + " WHERE id = ?", [job_id]).fetchone()
    return _job(row) if row else None


def promote_waiting_jobs(conn: duckdb.DuckDBPyConnection, now) -> list[str]:
    """waiting_review → queued for jobs whose review items are all resolved or dismissed."""
    waiting = conn.execute("SELECT id, depends_on_json FROM jobs WHERE status = 'waiting_review'").fetchall()
    promoted = []
    for job_id, depends in waiting:
        items = json.loads(depends)
        open_count = conn.execute("SELECT count(*) FROM review_items WHERE list_contains(?, id) AND status IN "
                                  "('open', 'claimed')", [items]).fetchone()[0] if items else 0
        if open_count == 0:
            conn.execute("UPDATE jobs SET status = 'queued', updated_at = ? WHERE id = ?", [now, job_id])
            promoted.append(job_id)
    return promoted


def claimable_job(conn: duckdb.DuckDBPyConnection, now, created_before=None) -> Job | None:
    row = conn.execute(_SELECT_JOBS + " WHERE (status = 'queued' OR (status = 'running' AND lease_expires_at < ?)) "
                       "AND (CAST(? AS TIMESTAMP) IS NULL OR created_at <= ?) ORDER BY created_at, id LIMIT 1",
                       [now, created_before, created_before]).fetchone()
    return _job(row) if row else None


def set_job_search(conn: duckdb.DuckDBPyConnection, job_id: str, search: dict) -> None:
    """What a retraining search aimed at (`rules`: the policy's bounds) and the `candidates` it tried."""
    conn.execute("UPDATE jobs SET search_json = ? WHERE id = ?", [json.dumps(search, default=str), job_id])


def searched_jobs(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Ids of the jobs whose search tried candidates."""
    return {row[0] for row in conn.execute("SELECT id FROM jobs WHERE search_json IS NOT NULL").fetchall()}


def job_search(conn: duckdb.DuckDBPyConnection, job_id: str) -> dict:
    row = conn.execute("SELECT search_json FROM jobs WHERE id = ?", [job_id]).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


def take_job(conn: duckdb.DuckDBPyConnection, job_id: str, worker: str, now, expires) -> bool:
    """Lease the job to `worker` unless someone else holds a live lease (one conditional UPDATE)."""
    count = conn.execute(
        "UPDATE jobs SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempts = attempts + 1, "
        "updated_at = ? WHERE id = ? AND (status = 'queued' OR (status = 'running' AND lease_expires_at < ?))",
        [worker, expires, now, job_id, now]).fetchone()[0]
    return count == 1


def heartbeat(conn: duckdb.DuckDBPyConnection, job_id: str, worker: str, now, expires, progress: dict) -> bool | None:
    """Extend the lease; None if `worker` no longer holds it, else whether cancellation was asked."""
    row = conn.execute("UPDATE jobs SET lease_expires_at = ?, progress_json = ?, updated_at = ? "
                       "WHERE id = ? AND status = 'running' AND lease_owner = ? RETURNING cancel_requested",
                       [expires, json.dumps(progress, default=str), now, job_id, worker]).fetchone()
    return None if row is None else bool(row[0])


def finish_job(conn: duckdb.DuckDBPyConnection, job_id: str, status: str, now, *, error: str | None = None,
               result_version: str | None = None) -> None:
    conn.execute("UPDATE jobs SET status = ?, error = ?, result_version = ?, lease_owner = NULL, "
                 "lease_expires_at = NULL, updated_at = ? WHERE id = ?", [status, error, result_version, now, job_id])


def request_cancel(conn: duckdb.DuckDBPyConnection, job_id: str, now) -> None:
    conn.execute("UPDATE jobs SET cancel_requested = true, updated_at = ? WHERE id = ?", [now, job_id])
