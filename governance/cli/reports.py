"""Auditors' documents and effective challenge: recompute a stored evaluation, generate a dossier."""

from __future__ import annotations

from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import model_version_args, service_command

KINDS = ("model-card", "annex-iv", "validation", "bias-audit")


def _recomputed(result) -> str:
    lines = [f"{result.model} {result.version}, evaluation {result.evaluation}: {result.summary()}"]
    for family in result.families:
        worst = "a value missing on one side" if family.max_relative_difference is None \
            else f"max relative difference {family.max_relative_difference:.3g}"
        skipped = (f", {family.not_recomputed} not recomputed ({', '.join(family.not_recomputed_metrics)}: no "
                   "reference library computes them as the engine does)" if family.not_recomputed else "")
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


def _reported(evidence, *, out: str) -> str:
    return (f"wrote {evidence['title']} of {evidence['model']} {evidence['version']} to {out}: "
            f"{', '.join(evidence['files'])}; {evidence['claim_count']} figures cite {evidence['cited_count']} audit "
            f"events up to the signed head seq {evidence['head']['seq']}. Verify it offline: govern audit verify "
            f"EXPORT --key KEY --report {out}") + render.altered_log_warning(evidence, "report")


@click.command("report")
@model_version_args
@click.option("--kind", required=True, type=click.Choice(KINDS),
              help="model-card; annex-iv (EU AI Act technical documentation); validation (SR 26-2 validation "
                   "report); bias-audit (NYC Local Law 144 summary).")
@click.option("--out", required=True, type=click.Path(), help="New folder to write the report into.")
@click.option("--format", "formats", multiple=True, type=click.Choice(("html", "md", "pdf")),
              help="Document format, repeatable [default: html and md]; pdf needs WeasyPrint (govern[pdf]).")
@service_command(_reported, exit_code=render.log_check_exit)
def report_command(service, *, model_name: str, version_name: str, kind: str, out: str, formats: tuple[str, ...]):
    """Generate an auditor's document of a version only from stored evidence: every figure cites the audit
    event it comes from (seq, hash) and the log's head is embedded, signed (auditors, admins).

    Beside the documents, evidence.json holds what `govern audit verify EXPORT --report OUT` checks.
    """
    return service.generate_report(model=model_name, version=version_name, kind=kind, out=Path(out),
                                   formats=formats or ("html", "md"))


COMMANDS = [recompute_command, report_command]
