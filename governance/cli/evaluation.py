"""Predictions in, metrics out: ingest prediction sets, evaluate and monitor versions, compare two, and
compute metrics for files without a store."""

from __future__ import annotations

from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import (
    DELIMITER,
    SEED,
    Finite,
    LazyChoice,
    dumps,
    intersections,
    model_version_args,
    service_command,
    split_list,
)

_intersections = intersections  # the commands' own --intersections option shadows the name inside them


@click.command()
@model_version_args
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--split", required=True, type=LazyChoice("governance.ingest", "SPLITS"),
              help="What the predictions are for. challenger: a benchmark model's scores on the same eval rows; "
                   "`govern evaluate` evaluates it with the eval set, and `baseline: challenger` rules compare "
                   "with it.")
@click.option("--label", help="Column with the true label (0 or 1) [default: label]. A production batch may come "
                               "without one: its labels arrive later with `govern labels` (ingest it with --id).")
@click.option("--score", default="score", show_default=True, help="Column with the predicted probability of 1.")
@click.option("--id", "id_column", metavar="COL", help="Column with unique row ids (default: row position).")
@click.option("--sensitive", metavar="A,B", help="Sensitive feature columns (groups for fairness metrics).")
@click.option("--intersections", metavar="A*B,...", help=(
    "Sensitive columns judged together: sex*race makes the feature 'sex*race' with groups such as "
    "'female & white', with every fairness metric and small-group rule (rules name it as feature: sex*race)."))
@click.option("--features", metavar="X,Y", help="Feature columns to keep (default: every other column).")
@click.option("--batch-time", metavar="ISO8601", help="When the batch was scored (production batches).")
@click.option("--delimiter", type=DELIMITER, default=",", show_default=True,
              help="CSV field separator (\\t for a tab).")
@service_command(lambda result, *, split, model_name, version_name: (
    f"ingested {result[0].row_count} rows as {result[0].id} ({split}) for {model_name} version {version_name}"
    + "".join(f"\nnote: {note}" for note in result[1])),
    as_plain=lambda result: {**result[0].to_dict(), "notes": result[1]})
def ingest(service, *, model_name: str, version_name: str, file: str, split: str, label: str | None, score: str,
           id_column: str | None, sensitive: str | None, intersections: str | None, features: str | None,
           batch_time: str | None, delimiter: str):
    """Validate a CSV or Parquet file of predictions and store it as a prediction set.

    Every problem in the file is reported at once; nothing is written unless the file is clean.
    """
    from governance.ingest import ColumnRoles

    roles = ColumnRoles(label=label, score=score, id=id_column, sensitive=split_list(sensitive),
                        features=split_list(features) if features is not None else None,
                        intersections=_intersections(intersections))
    prediction_set = service.ingest(model=model_name, version=version_name, file=Path(file), split=split,
                                    roles=roles, batch_time=batch_time, delimiter=delimiter)
    return prediction_set, service.ingest_notes(prediction_set)


@click.command("evaluate")
@model_version_args
@click.option("--reference-split", type=click.Choice(["reference", "production"]), default="reference",
              show_default=True, help="Which of the version's own prediction sets drift is measured against.")
@click.option("--reference-version", metavar="VERSION",
              help="Measure drift against this version's reference set (or its eval set) instead.")
@click.option("--threshold", type=Finite(0, 1), default=0.5, show_default=True,
              help="Score at or above which we predict 1.")
@click.option("--resamples", type=click.IntRange(0, 10_000), default=200, show_default=True,
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap (0 to 2^32-1).")
@service_command(render.evaluation, as_plain=render.evaluation_plain)
def evaluate_command(service, *, model_name: str, version_name: str, reference_split: str,
                     reference_version: str | None, threshold: float, resamples: int, seed: int):
    """Compute and store every metric for a version's latest eval predictions (a new, immutable evaluation).

    Performance, calibration, fairness per sensitive column and drift against the reference. The
    version's challenger predictions (`govern train` makes them; `govern ingest --split challenger`
    registers your own) are evaluated too, with the same options and no drift: `baseline: challenger`
    rules compare with them.
    """
    evaluation, metric_set = service.evaluate(
        model=model_name, version=version_name, reference_split=reference_split,
        reference_version=reference_version, threshold=threshold, resamples=resamples, seed=seed)
    return evaluation, metric_set, service.challenger_evaluation(model=model_name, version=version_name)


@click.command("monitor")
@model_version_args
@click.option("--batch", metavar="PREDICTION_SET", help="A production prediction set id (default: the latest batch).")
@click.option("--threshold", type=Finite(0, 1),
              help="Score at or above which we predict 1 [default: the threshold the version's latest evaluation "
                   "used, 0.5 without one].")
@click.option("--max-ece", type=Finite(0, 1, min_open=True), default=0.05, show_default=True,
              help="Estimate performance without labels only when the eval set's ECE is at most this.")
@service_command(render.monitored, as_plain=render.monitored_plain)
def monitor_command(service, *, model_name: str, version_name: str, batch: str | None, threshold: float | None,
                    max_ece: float):
    """Evaluate a production batch against the reference and estimate its performance without labels (CBPE);
    dataset drift files a drift_alert review item, a broken rule on an estimated metric a monitor_alert."""
    return service.monitor(model=model_name, version=version_name, batch=batch, threshold=threshold,
                           max_ece=max_ece)


@click.command("metrics")
@click.argument("current", type=click.Path(dir_okay=False))
@click.option("--reference", type=click.Path(dir_okay=False), help="Reference file for drift (CSV or Parquet).")
@click.option("--label", required=True, help="Column with the true label (0 or 1).")
@click.option("--score", required=True, help="Column with the predicted probability of 1.")
@click.option("--sensitive", metavar="A,B", help="Sensitive columns: fairness and calibration per group.")
@click.option("--intersections", metavar="A*B,...", help="Sensitive columns judged together (sex*race).")
@click.option("--features", metavar="X,Y", help="Columns to measure drift on (needs --reference).")
@click.option("--threshold", type=Finite(0, 1), default=0.5, show_default=True,
              help="Score at or above which we predict 1.")
@click.option("--resamples", type=click.IntRange(0, 10_000), default=200, show_default=True,
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap (0 to 2^32-1).")
@click.option("--delimiter", type=DELIMITER, default=",", show_default=True,
              help="CSV field separator of the files (\\t for a tab).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json prints a JSON array of records and nothing else.")
def metrics_command(current: str, reference: str | None, label: str, score: str, sensitive: str | None,
                    intersections: str | None, features: str | None, threshold: float, resamples: int, seed: int,
                    delimiter: str, fmt: str) -> None:
    """Compute the metric records for files, without a store (CSV or Parquet). The current file is read and
    checked as `govern ingest` reads and checks an eval set: what ingest refuses, this refuses too."""
    import tempfile

    from evaluation import evaluate
    from governance.ingest import ColumnRoles, prepare_prediction_file, prepare_reference_file, refuse_too_wide
    from governance.limits import max_groups

    if reference:
        refuse_too_wide(Path(reference), "measure", delimiter)
    roles = ColumnRoles(label=label, score=score, sensitive=split_list(sensitive),
                        intersections=_intersections(intersections))
    with tempfile.TemporaryDirectory(prefix="govern-metrics-") as scratch:
        checked = prepare_prediction_file(Path(current), roles, Path(scratch) / "current.parquet",
                                          delimiter=delimiter, doing="measure").scratch
        read = prepare_reference_file(Path(reference), Path(scratch) / "reference.parquet",
                                      delimiter=delimiter) if reference else None
        metric_set = evaluate(current=checked, reference=read, label=label,
                              score=score, sensitive=split_list(sensitive), features=split_list(features),
                              threshold=threshold, resamples=resamples, seed=seed, max_groups=max_groups(),
                              intersections=_intersections(intersections))
    if fmt == "json":
        click.echo(dumps(metric_set.to_list(), separators=(",", ":")))
    else:
        click.echo(render.records_table(metric_set.records))


@click.command("compare")
@click.argument("model")
@click.argument("a")
@click.argument("b")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level of the two-sided test.")
@click.option("--all", "show_all", is_flag=True, help="List every shared record, not only the significant ones.")
@service_command(render.comparison, as_plain=lambda comparison: [d.to_dict() for d in comparison.differences])
def compare_command(service, *, model: str, a: str, b: str, alpha: float, show_all: bool):
    """Compare two versions' latest evaluations: B − A for every shared record, and whether it is
    significant (normal test on the bootstrap intervals; conservative when both saw the same rows). --json
    lists the differences; a note on stderr says when the two were evaluated at different thresholds or on different
    numbers of rows."""
    comparison = service.compare_versions(model=model, a=a, b=b, alpha=alpha)
    for note in (comparison.threshold_note(), comparison.rows_note(f"`govern gate show {model} {b}`")):
        if note:
            click.echo(f"note: {note}", err=True)
    return comparison


COMMANDS = [ingest, evaluate_command, monitor_command, metrics_command, compare_command]
