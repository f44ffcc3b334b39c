"""Auditors' documents and effective challenge: recompute a stored evaluation, generate a dossier."""

from __future__ import annotations

import click

from governance.cli.common import model_version_args, service_command


def _recomputed(result) -> str:
    lines = [f"{result.model} {result.version}, evaluation {result.evaluation}: {result.summary()}"]
    for family in result.families:
        worst = "a value missing on one side" if family.max_relative_difference is None \
            else f"max relative difference {family.max_relative_difference:.3g}"
        skipped = f", {family.not_recomputed} not recomputed" if family.not_recomputed else ""
        lines.append(f"  {family.family:<12} {family.compared:>4} records, {worst}{skipped}")
    for mismatch in result.mismatches[:20]:
        lines.append(f"  DIFFERS {mismatch.label()}: stored {mismatch.stored!r}, reference {mismatch.reference!r}")
    if len(result.mismatches) > 20:
        lines.append(f"  … and {len(result.mismatches) - 20} more")
    lines.append(f"logged as audit event seq {result.seq} ({result.hash[:12]}…)")
    return "\n".join(lines)


@click.command("recompute")
@model_version_args
@click.option("--evaluation", metavar="ID", help="This evaluation of the version (default: its latest).")
@service_command(_recomputed, exit_code=lambda result: 0 if result.agrees else 1)
def recompute_command(service, *, model_name: str, version_name: str, evaluation: str | None):
    """Recompute a stored evaluation with scikit-learn, torchmetrics, fairlearn and Evidently from its stored
    prediction set and log the agreement (auditors, engineers, admins).

    Exit 0 when every record agrees to 1e-6, 1 naming each record that differs, 2 on an error.
    Needs the reference libraries: pip install 'govern[reference]'.
    """
    return service.recompute(model=model_name, version=version_name, evaluation=evaluation)


COMMANDS = [recompute_command]
