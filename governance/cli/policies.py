"""Policy packs: validate, register, assign and list them."""

from __future__ import annotations

from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import RISK_TIER, GovernGroup, service_command, without


@click.group(cls=GovernGroup)
def policy() -> None:
    """Policy packs (YAML): validate, register, assign. Shipped packs: default, strict (those names always
    mean the shipped packs). A binding gate runs the pack assigned to the model."""


@policy.command("validate")
@click.argument("file", metavar="FILE")
@service_command(render.policy_valid, anonymous=True)
def policy_validate(service, *, file: str):
    """Check a policy pack against the schema; exit 0 if valid, 2 with every problem named if not."""
    loaded = service.load_policy(Path(file))
    return {"name": loaded.policy.name, "version": loaded.policy.version, "rules": len(loaded.policy.rules),
            "sha256": loaded.sha256, "valid": True}


@policy.command("register")
@click.argument("file", type=click.Path(dir_okay=False))
@service_command(render.policy_registered)
def policy_register(service, *, file: str):
    """Register a pack under its name as that name's next version (admins; audited)."""
    return without(service.register_policy(file=Path(file)), "text")


@policy.command("assign")
@click.argument("name", metavar="NAME[@VERSION]")
@click.option("--model", "model_name", metavar="MODEL", help="Assign to this model.")
@click.option("--tier", type=RISK_TIER, help="Assign to every model of this risk tier.")
@service_command(render.policy_assigned)
def policy_assign(service, *, name: str, model_name: str | None, tier: str | None):
    """Make a registered or shipped pack the one binding gates run for a model or a risk tier (admins)."""
    return service.assign_policy(policy=name, model=model_name, tier=tier)


@policy.command("list")
@service_command(render.policy_catalog, as_plain=render.policy_catalog_plain)
def policy_list(service):
    """Registered packs, shipped packs and assignments."""
    return service.policy_catalog()


COMMANDS = [policy]
