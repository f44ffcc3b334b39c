"""The release gate: run it on a version, or show a stored decision."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import DefaultCommandGroup, model_version_args, service_command
from governance.errors import InvalidInput


@click.group("gate", cls=DefaultCommandGroup)
def gate() -> None:
    """Run the release gate on a version, or show a stored decision.

    `govern gate MODEL VERSION [OPTIONS]` runs it (the same as `govern gate run`: `govern gate run --help`
    lists its options, --dry-run, --policy and --junit); `govern gate show MODEL VERSION` prints the
    stored decision. A model named `show` or `run` is gated with `govern gate run show VERSION`.
    """


@gate.command("run")
@model_version_args
@click.option("--policy", "policy_file", metavar="PACK",
              help="Binding: must be the model's assigned pack (the default). With --dry-run: any file, shipped "
                   "pack (default, strict) or registered pack (NAME or NAME@VERSION).")
@click.option("--dry-run", is_flag=True, help="Decide and report, but store and queue nothing.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the decision as JUnit XML here.")
@service_command(render.gate_outcome, exit_code=lambda outcome: 0 if outcome.decision.verdict == "passed" else 1)
def gate_command(service, *, model_name: str, version_name: str, policy_file: str | None, dry_run: bool,
                 junit: str | None):
    """Judge the version's latest evaluation against its assigned policy: exit 0 pass, 1 blocked, 2 error.

    Enforced, the decision is stored and logged, and failing rules queue review items and a
    retraining job as their on_fail says (never twice for the same evidence).
    """
    if junit:
        _writable(Path(junit))  # refused before the gate decides and stores anything
    outcome = service.gate(model=model_name, version=version_name, policy=policy_file, dry_run=dry_run)
    if junit:
        from policies.junit import junit_xml

        try:
            Path(junit).write_text(junit_xml(outcome.decision, model=model_name, version=version_name),
                                   encoding="utf-8")
        except OSError as exc:  # stored already: exit 1, so that CI stops, never 2 ("nothing was changed")
            click.echo(f"error: the gate decision {outcome.gate_id or '(dry run)'} ({outcome.decision.verdict}) is "
                       f"{'made' if dry_run else 'stored'}, but --junit {junit} could not be written "
                       f"({exc.strerror or exc}); `govern gate show {model_name} {version_name}` shows it.", err=True)
            raise click.exceptions.Exit(1) from exc
    return outcome


def _writable(path: Path) -> None:
    """InvalidInput unless `path` can be opened for writing (its folder exists, it is no folder, the system
    lets this user write it); a file it had to create is removed again."""
    if not path.parent.is_dir():
        raise InvalidInput(f"--junit {path}: the folder {path.parent} does not exist.")
    existed = path.exists()
    try:  # O_NONBLOCK: a named pipe nobody reads is refused (ENXIO) where a plain open waited forever
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)
        try:  # then as a file to append to, as the report will be written (/proc/version opens, then refuses it)
            os.lseek(fd, 0, os.SEEK_END)
        finally:
            os.close(fd)
    except OSError as exc:
        reason = "a named pipe nobody reads" if exc.errno == errno.ENXIO else exc.strerror or exc
        raise InvalidInput(f"--junit {path} cannot be written ({reason}).") from exc
    if not existed:
        path.unlink(missing_ok=True)


@gate.command("show")
@model_version_args
@click.option("--id", "gate_id", metavar="GATE_ID", help="A stored decision of the version (default: its latest).")
@service_command(render.gate_decision)
def gate_show(service, *, model_name: str, version_name: str, gate_id: str | None):
    """Show a version's stored gate decision: verdict, mode, policy and evidence hashes, baseline, and per rule
    its status, the value judged, the threshold, rows, failing groups and reason.

    Any role may look. Exit 0 whatever the verdict (`govern gate` itself exits 1 when blocked); 2 when the
    version or the decision does not exist. --json prints the stored decision record.
    """
    return service.gate_decision(model=model_name, version=version_name, gate_id=gate_id)


COMMANDS = [gate]
