"""`govern readiness`: the Overview's release-readiness board as text or JSON."""

from __future__ import annotations

import click

from governance.cli.common import service_command


def render_readiness(board) -> str:
    lines = []
    for card in board.models:
        move = card.production
        production = "not in production" if move is None else f"production v{move.version}"
        if move is not None and move.action == "override":
            expiry = f"{move.override_expires:%Y-%m-%d %H:%M} UTC" if move.override_expires else "no expiry"
            production += f" on an admin OVERRIDE {'that EXPIRED' if move.expired else 'until'} {expiry}"
        work = f"{_count(card.open_items, 'open review item')}, {_count(card.active_jobs, 'active job')}"
        lines.append(f"{card.model} ({card.risk_tier} risk): {production}; {work}")
        lines.append(f"  {card.summary}")
        lines += [f"  {f.status}: {f.sentence()}" for f in card.findings if not f.blocking]
    lines.append("needs you:" if board.needs_you else f"nothing waits for you ({board.role}).")
    lines += [f"  - {task.text}" for task in board.needs_you]
    return "\n".join(lines)


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@click.command("readiness")
@service_command(render_readiness)
def readiness_command(service):
    """Per model: what is in production (overrides marked with their expiry), its latest binding gate's
    verdict with the failing rules, columns and groups, open review items and active jobs; then what waits
    for you (items to judge, versions awaiting your sign-off, releases, escalations, overrides)."""
    return service.readiness()


COMMANDS = [readiness_command]
