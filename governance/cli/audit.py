"""The tamper-evident decision log: verify it (or an export, offline), list, export and re-witness it."""

from __future__ import annotations

from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import TIME_FORMATS, GovernGroup, LazyChoice, TimeText, service_command
from governance.errors import InvalidInput


def _verification(result, *, directory: str | None, since: str | None) -> str:
    text = render.audit_verification(result, directory=directory, since=since)
    report = getattr(result, "report", None)
    if report and result.ok:
        text += f"\nreport {report} matches the log: every cited event is in the export unaltered and says what " \
                "the report says"
    return text


@click.group(cls=GovernGroup)
def audit() -> None:
    """Verify and export the tamper-evident decision log (auditors, admins)."""


@audit.command("verify")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--key", metavar="HEX", envvar="GOVERN_AUDIT_KEY",
              help="With DIR (required): the installation's public key, as `govern audit key` prints it "
                   "[env GOVERN_AUDIT_KEY].")
@click.option("--since", type=click.Path(file_okay=False), metavar="EARLIER_EXPORT",
              help="With DIR: also prove this earlier export is a prefix of DIR (nothing rewritten in between).")
@click.option("--report", type=click.Path(), metavar="REPORT",
              help="With DIR: also check a `govern report` folder (or a document in it) against the export: every "
                   "cited event present and unaltered, every figure what its event says.")
@service_command(_verification, exit_code=lambda report: 0 if report.ok else 1)
def audit_verify(service, *, directory: str | None, key: str | None, since: str | None, report: str | None):
    """Verify the live chain (and the witness of signed heads), or with DIR an export, offline from its
    files and the installation's public key alone; with --report, a dossier against that export.

    Exit 0 when intact, 1 when tampering is detected (naming the event), 2 on an error.
    """
    if directory is None:
        if since or key or report:
            raise InvalidInput("--key, --since and --report verify against an export: give its folder "
                               "(govern audit verify DIR).")
        return service.verify_audit()
    from governance.service import verify_audit_export

    return verify_audit_export(Path(directory), expected_public_key=key, since=Path(since) if since else None,
                               report=Path(report) if report else None)


@audit.command("list")
@click.option("--model", help="Events about this model, its versions, prediction sets, review items and jobs.")
@click.option("--actor", help="Events by this user.")
@click.option("--action", help="An action (review.judge) or its prefix (review).")
@click.option("--since", type=click.DateTime(TIME_FORMATS), help="From this time on (UTC unless an offset is given).")
@click.option("--until", type=TimeText(TIME_FORMATS),
              help="Up to this time; a date alone means the end of that day (UTC unless an offset is given).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="At most this many, newest first.")
@service_command(render.audit_events, as_plain=render.audit_events_plain)
def audit_list(service, *, model: str | None, actor: str | None, action: str | None, since, until,
               limit: int):
    """List decision-log events, newest first, filtered by model, actor, action and time."""
    from governance.service.times import parse_until

    return service.audit_events(model=model, actor=actor, action=action, since=since, until=parse_until(until),
                                limit=limit)


@audit.command("export")
@click.option("--out", required=True, type=click.Path(), help="New folder to write the export into.")
@click.option("--format", "fmt", type=LazyChoice("governance.audit_export", "FORMATS"), default="jsonl",
              show_default=True, help="File format of the events; the manifest is always JSON.")
@service_command(render.exported, exit_code=render.log_check_exit)
def audit_export(service, *, out: str, fmt: str):
    """Export the whole log with a signed manifest (row count, head hash, file hashes)."""
    return service.export_audit(out=Path(out), fmt=fmt)


@audit.command("witness")
@click.option("--reason", required=True, help="Why, e.g. what the gap's events were checked against.")
@click.option("--against", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="An export of this log you hold (`govern audit export`), taken before: it must verify with this "
                   "installation's key and be the live log's beginning, unchanged.")
@click.option("--dry-run", is_flag=True, help="Check and list the gap's events with what they record; witness "
              "nothing.")
@service_command(render.rewitnessed, exit_code=lambda report: 0 if report.ok else 1)
def audit_witness(service, *, reason: str, against: Path, dry_run: bool):
    """Witness the current head again where no witness line covers the latest events. govern witnesses
    each change before committing it, so no crash leaves such a gap (only a store written by an earlier
    govern may hold one, or a witness moved to a new file). Checks the chain, and the live log against an
    export you took before (a log rewritten since differs from it); lists the gap's events, which only you
    then vouch for (--dry-run lists them first, witnessing nothing). A rewritten log stays flagged. Auditors
    only, with a credential of their own: a password they set themselves last, or a sign-in through the
    identity provider (not an API token an admin created): an admin's role could have written the gap."""
    return service.rewitness(reason=reason, against=against, dry_run=dry_run)


@audit.command("key")
@service_command(lambda key: key, json_output=False)
def audit_key(service):
    """Print this installation's Ed25519 public key, which signs every export."""
    return service.public_key()


COMMANDS = [audit]
