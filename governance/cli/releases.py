"""Sign-off and the production alias: approve or reject, release, roll back, and the alias's history."""

from __future__ import annotations

import click

from governance.cli import render
from governance.cli.common import model_version_args, service_command
from governance.errors import InvalidInput


@click.command("signoff")
@model_version_args
@click.option("--approve", is_flag=True, help="Approve the release.")
@click.option("--reject", is_flag=True, help="Reject it (blocks release until withdrawn).")
@click.option("--withdraw", is_flag=True, help="Withdraw your earlier decision.")
@click.option("--comment", default="", help="Why; required to reject.")
@click.option("--acknowledge-blocked", is_flag=True,
              help="Approve although the latest gate is blocked (recorded with the sign-off).")
@service_command(render.signoff)
def signoff_command(service, *, model_name: str, version_name: str, approve: bool, reject: bool, withdraw: bool,
                    comment: str, acknowledge_blocked: bool):
    """Approve or reject a version for release (reviewers and admins; never its creator).

    A decision binds to the artifact and the evaluation the latest gate judged: a new evaluation needs
    new approvals, and a rejection blocks that artifact under any version name until withdrawn. An approval
    lists on stderr what blocks that gate (with --acknowledge-blocked) and what it flags without blocking
    (warnings, rules with too little evidence)."""
    chosen = [name for name, given in (("approve", approve), ("reject", reject), ("withdraw", withdraw)) if given]
    if len(chosen) != 1:  # two would leave the decision to the order they were typed in
        raise InvalidInput("say one of --approve, --reject or --withdraw"
                           + (f", not {' and '.join(f'--{name}' for name in chosen)}." if chosen else "."))
    signoff = service.sign_off(model=model_name, version=version_name, decision=chosen[0], comment=comment,
                               acknowledge_blocked=acknowledge_blocked)
    if signoff.decision == "approve" and signoff.gate_id:  # warnings pass a gate: say what the approval accepted
        try:
            gate = service.gate_decision(model=model_name, version=version_name, gate_id=signoff.gate_id)
        except Exception:  # the approval is stored: a failure here must not read as "nothing was changed"
            return signoff
        if gate.decision.cautions or render.acknowledged(gate.decision):
            click.echo(render.cautions(gate.decision, approved=gate.id), err=True)
    return signoff


@click.command("release")
@model_version_args
@click.option("--override", is_flag=True, help="Admins: release despite the gate or approvals (marked).")
@click.option("--reason", help="With --override: why.")
@click.option("--expires", metavar="ISO8601", help="With --override: when the exception lapses.")
@service_command(render.release)
def release_command(service, *, model_name: str, version_name: str, override: bool, reason: str | None,
                    expires: str | None):
    """Move the model's production alias to VERSION: needs a passing binding gate and independent
    approvals of that evidence (risk tier low/medium 1, high 2, or what the policy or an admin asks)."""
    return service.release(model=model_name, version=version_name, override=override, reason=reason,
                           expires=expires)


@click.command("rollback")
@click.argument("model_name", metavar="MODEL")
@click.option("--to", "to_version", metavar="VERSION", help="A version that was in production before.")
@service_command(render.rollback)
def rollback_command(service, *, model_name: str, to_version: str | None):
    """Move production back to the previous released version (or --to one)."""
    return service.rollback(model=model_name, to=to_version)


@click.command("history")
@click.argument("model_name", metavar="MODEL")
@service_command(render.history)
def history_command(service, *, model_name: str):
    """Who moved the production alias, when, to which version and why (overrides marked)."""
    return service.history(model=model_name)


COMMANDS = [signoff_command, release_command, rollback_command, history_command]
