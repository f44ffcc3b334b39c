"""`govern labels`: outcomes that arrive after a production batch's predictions, joined by row id; and
`govern estimates`: estimated beside realised performance per monitored batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from governance.cli.common import DELIMITER, Finite, model_version_args, service_command

_SHOWN = ("accuracy", "roc_auc", "f1")


def _value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def render_labels(outcome) -> str:
    arrival = outcome.arrival
    lines = [f"batch {arrival.prediction_set_id}: {arrival.new_labels:,} labels recorded"
             + (f" ({arrival.repeated:,} rows already had the same label)" if arrival.repeated else "")
             + f"; {arrival.labelled_total:,} of {outcome.batch_rows:,} rows labelled; evaluation "
             f"{outcome.evaluation.id}"]
    for metric in _SHOWN:
        estimated = outcome.metrics.find("estimated", metric)
        realised = outcome.metrics.find("performance", metric)
        if estimated is None and realised is None:
            continue
        band = f" [{_value(estimated.ci_low)}, {_value(estimated.ci_high)}]" if estimated else ""
        outside = (realised is not None and estimated is not None and None not in (
            realised.value, estimated.ci_low, estimated.ci_high)
            and not estimated.ci_low <= realised.value <= estimated.ci_high)
        lines.append(f"  {metric}: realised {_value(realised.value if realised else None)} on "
                     f"{realised.n if realised else 0:,} labelled rows; estimated "
                     f"{_value(estimated.value if estimated else None)}{band}"
                     + (" (outside the band)" if outside else ""))
    refused = outcome.metrics.params.get("estimation", {}).get("refused")
    if refused:
        lines.append(f"  not estimated: {refused}")
    return "\n".join(lines)


def labels_plain(outcome) -> dict[str, Any]:
    return {"arrival": outcome.arrival.to_dict(), "batch_rows": outcome.batch_rows,
            "evaluation": outcome.evaluation.to_dict(), "records": outcome.metrics.to_list()}


@click.command("labels")
@model_version_args
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--batch", required=True, metavar="PREDICTION_SET",
              help="The production batch the outcomes are for: its id (ps-…), as ingest printed it; `govern "
                   "version show MODEL VERSION` lists the version's batches.")
@click.option("--id", "id_column", required=True, metavar="COL",
              help="The file's column with the batch's row ids (the batch was ingested with --id).")
@click.option("--label", required=True, metavar="COL", help="The file's column with the outcome (0 or 1).")
@click.option("--threshold", type=Finite(0, 1),
              help="Score at or above which we predict 1 [default: the threshold the version's latest evaluation "
                   "used, 0.5 without one].")
@click.option("--max-ece", type=Finite(0, 1, min_open=True),
              help="Estimate only when the eval set's ECE is at most this [default: the bound the batch's last "
                   "`monitor` used, 0.05 without one].")
@click.option("--delimiter", type=DELIMITER, default=",", show_default=True,
              help="CSV field separator (\\t for a tab).")
@service_command(render_labels, as_plain=labels_plain)
def labels_command(service, *, model_name: str, version_name: str, file: str, batch: str, id_column: str, label: str,
                   threshold: float | None, max_ece: float | None, delimiter: str):
    """Record outcomes of a production batch ingested without labels, matched by row id, and the realised
    metrics next to its estimates. A file may label part of the batch (later files add more); unknown ids
    or changed labels refuse the whole file, nothing written."""
    return service.labels(model=model_name, version=version_name, file=Path(file), batch=batch,
                          id_column=id_column, label=label, threshold=threshold, max_ece=max_ece,
                          delimiter=delimiter)


def render_estimates(points) -> str:
    if not points:
        return ("no production batch has estimates: none was monitored yet, or monitoring refused to estimate "
                "(`govern monitor MODEL VERSION` says why; --max-ece sets how well calibrated the eval scores must "
                "be).")
    lines = [f"{'batch':<16} {'time':<10} {'metric':<12} {'estimated':>9} {'band':<17} {'realised':>8} labelled"]
    for p in points:
        if p.feature is not None or p.metric not in _SHOWN:
            continue
        when = f"{p.batch_time:%Y-%m-%d}" if p.batch_time else "-"
        band = f"[{_value(p.ci_low)}, {_value(p.ci_high)}]"
        lines.append(f"{p.prediction_set_id:<16} {when:<10} {p.metric:<12} {_value(p.estimate):>9} {band:<17} "
                     f"{_value(p.realised):>8} {p.labelled_rows:,}/{p.rows:,}"
                     + ("  outside the band" if p.outside_band else ""))
    misses = sum(1 for p in points if p.feature is None and p.metric in _SHOWN and p.outside_band)
    if misses:
        lines.append(f"{misses} realised value{'s' if misses > 1 else ''} outside the estimate's band: the estimate "
                     "takes the scores to be as calibrated on the batch as on the eval set; a miss says they were "
                     "not (or, on part of a batch labelled, that the labelled rows differ).")
    return "\n".join(lines)


@click.command("estimates")
@model_version_args
@service_command(render_estimates)
def estimates_command(service, *, model_name: str, version_name: str):
    """Estimated performance (CBPE, with its band) beside realised performance where labels arrived, per
    monitored production batch; --json gives every group and fairness gap too."""
    return service.estimate_timeline(model=model_name, version=version_name)


COMMANDS = [labels_command, estimates_command]
