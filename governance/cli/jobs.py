"""Retraining jobs and the worker that runs them."""

from __future__ import annotations

import click

from governance.cli import render
from governance.cli.common import GovernGroup, service_command
from governance.records import JobStatus


@click.group(cls=GovernGroup)
def jobs() -> None:
    """Retraining jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice([s.value for s in JobStatus]), help="Only jobs in this state.")
@service_command(render.jobs)
def jobs_list(service, *, status: str | None):
    """List retraining jobs, oldest first."""
    return service.list_jobs(status=status)


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@service_command(render.job_detail)
def jobs_show(service, *, job_id: str):
    """Show a job: status, strategies, attempts, progress, error, resulting version, and the candidates
    its search tried (strategy and strength, validation accuracy and ECE, pass or what failed; * chosen)."""
    return service.show_job(job_id=job_id)


@jobs.command("cancel")
@click.argument("job_id", metavar="ID")
@service_command(render.job_cancelled)
def jobs_cancel(service, *, job_id: str):
    """Cancel a job (a running one stops within about a second, at the end of an epoch)."""
    return service.cancel_job(job_id=job_id)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs queued when it starts, then exit (no polling).")
@click.option("--max-jobs", type=click.IntRange(1, 1_000_000), help="Exit after this many jobs.")
@click.option("--lease", "lease_seconds", type=click.IntRange(5, 86_400), default=60, show_default=True,
              help="Seconds a job stays leased without a heartbeat before another worker may take it.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Lapsed leases after which a job is failed.")
@service_command(render.worker_results, json_output=False, exit_code=lambda result: int(any(
    run.status in (JobStatus.FAILED, "abandoned") for run in result[0])))
def worker_command(service, *, once: bool, max_jobs: int | None, lease_seconds: int, max_attempts: int):
    """Claim retraining jobs with a lease and heartbeat, and run them (progress on stderr).

    Each job searches its strategies' strength against the model's policy, then registers, evaluates
    and gates the new version in one step. With --once only the jobs queued when the worker started
    run: a job that the new version's gate queues waits for the next run, so each call is one round of
    the loop. The loop stops on its own after the policy's max_rounds retrains (default 2), or when a
    retrain changed nothing or did not improve the flagged metric; it files an escalation item for
    engineers instead.

    Exits 1 when a job it ran failed (the job keeps the error: `govern jobs show ID`); gating the version
    again queues the retrain anew, unless the job escalated (it cannot succeed as asked). Also exits 1 when
    it left a job unfinished: another worker took it over after its lease lapsed (that worker's result
    stands), or the store stayed locked past --lock-timeout (the job's lease lapses and a worker retries it).
    A worker whose user is disabled meanwhile stops with exit 2 and writes nothing more."""
    results = service.run_worker(once=once, max_jobs=max_jobs, lease_seconds=lease_seconds,
                                 max_attempts=max_attempts, report=lambda line: click.echo(line, err=True))
    if results:
        return results, [], []
    return results, service.list_jobs(status="running"), service.list_jobs(status="waiting_review")


COMMANDS = [jobs, worker_command]
