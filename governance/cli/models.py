"""Models and their versions: register, edit, list, show, train and trace their lineage."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import (
    DELIMITER,
    RISK_TIER,
    Finite,
    GovernGroup,
    intersections,
    model_version_args,
    service_command,
    split_list,
)


@click.group(cls=GovernGroup)
def model() -> None:
    """Register, list and edit models."""


@model.command("register")
@click.argument("name")
@click.option("--owner", metavar="USER", help="The accountable user (default: you).")
@click.option("--description", metavar="TEXT", help="What the model is for.")
@click.option("--risk-tier", type=RISK_TIER, default="medium", show_default=True,
              help="Risk tier; policies can require more of high-risk models.")
@click.option("--intended-use", metavar="TEXT", help="Who may use the model for what (stated in its documents).")
@click.option("--limitations", metavar="TEXT", help="Known limitations and uses it is not fit for.")
@service_command(lambda registered: f"registered model {registered.name!r} (risk tier {registered.risk_tier})")
def model_register(service, *, name: str, owner: str | None, description: str | None, risk_tier: str,
                   intended_use: str | None, limitations: str | None):
    """Register a model with its inventory (owner, risk tier, description, intended use, limitations)."""
    return service.register_model(name=name, owner=owner, description=description, risk_tier=risk_tier,
                                  intended_use=intended_use, limitations=limitations)


@model.command("edit")
@click.argument("name")
@click.option("--description", metavar="TEXT", help="What the model is for.")
@click.option("--risk-tier", type=RISK_TIER, help="Admins: the model's risk tier.")
@click.option("--min-approvals", type=click.IntRange(1, 20), metavar="N",
              help="Admins: raise the independent approvals every release needs above the risk tier's "
                   "(low/medium 1, high 2); never lower.")
@click.option("--intended-use", metavar="TEXT", help="Who may use the model for what (empty: clear it).")
@click.option("--limitations", metavar="TEXT", help="Known limitations and uses it is not fit for (empty: clear).")
@service_command(lambda changed: f"{changed.name}: risk tier {changed.risk_tier}, approvals floor "
                                 f"{changed.min_approvals or 'of the tier'}")
def model_edit(service, *, name: str, description: str | None, risk_tier: str | None, min_approvals: int | None,
               intended_use: str | None, limitations: str | None):
    """Change a model's description, intended use, limitations, risk tier or approval floor (audited)."""
    return service.edit_model(name=name, description=description, risk_tier=risk_tier, min_approvals=min_approvals,
                              intended_use=intended_use, limitations=limitations)


@model.command("list")
@service_command(render.models)
def model_list(service):
    """List registered models."""
    return service.list_models()


@click.group(cls=GovernGroup)
def version() -> None:
    """Register, list and show model versions."""


@version.command("register")
@model_version_args
@click.option("--artifact", required=True, type=click.Path(dir_okay=False), help="The model file to store.")
@click.option("--training-data", type=click.Path(dir_okay=False), help="CSV or Parquet the version was trained on.")
@click.option("--parent", metavar="VERSION", help="The version this one was derived from.")
@service_command(lambda registered: f"registered {registered.model} version {registered.version} "
                                    f"(artifact {registered.artifact_sha256[:12]}…)")
def version_register(service, *, model_name: str, version_name: str, artifact: str, training_data: str | None,
                     parent: str | None):
    """Register a version: its artifact (and training data) are stored by sha256."""
    return service.register_version(model=model_name, version=version_name, artifact=Path(artifact),
                                    training_data=Path(training_data) if training_data else None, parent=parent)


@version.command("list")
@click.argument("model_name", metavar="MODEL")
@service_command(render.versions)
def version_list(service, *, model_name: str):
    """List a model's versions."""
    return service.list_versions(model=model_name)


@version.command("show")
@model_version_args
@service_command(render.version_detail)
def version_show(service, *, model_name: str, version_name: str):
    """Show a version, its lineage and its prediction sets with their row counts."""
    return service.show_version(model=model_name, version=version_name)


@version.command("metrics")
@model_version_args
@click.option("--evaluation", "evaluation_id", metavar="ID", help="A stored evaluation of the version (default: the "
              "latest of its eval predictions).")
@service_command(render.stored_evaluation,
                 as_plain=lambda found: {"evaluation": found[0].to_dict(), "records": found[1].to_list()})
def version_metrics(service, *, model_name: str, version_name: str, evaluation_id: str | None):
    """Print a stored evaluation's records, read, not computed again (`govern evaluate` makes a new evaluation,
    and gating that one is judging again): the settings it ran with, then each record with its interval."""
    return service.stored_evaluation(model=model_name, version=version_name, evaluation_id=evaluation_id)


@click.command("train")
@click.argument("model_name", metavar="MODEL")
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Training table (CSV or Parquet).")
@click.option("--label", required=True, help="The label column (0 or 1).")
@click.option("--sensitive", metavar="A,B", help="Sensitive columns (fairness per group; kept in the predictions).")
@click.option("--intersections", metavar="A*B,...", help="Sensitive columns also judged together (sex*race).")
@click.option("--features", metavar="X,Y", help="Feature columns (default: every column but the label).")
@click.option("--categorical", metavar="X,Y",
              help="Columns of numbers that are category codes (a race or occupation code): one-hot, not amounts.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML or JSON with training settings (epochs, batch_size, learning_rate, hidden, seed, …).")
@click.option("--version", "version_name", metavar="V", help="Version name (default: the next number).")
@click.option("--eval-fraction", type=Finite(0, 1, min_open=True, max_open=True), default=0.25, show_default=True,
              help="Rows held out for evaluation.")
@service_command(render.trained)
def train_command(service, *, model_name: str, data: str, label: str, sensitive: str | None,
                  intersections: str | None, features: str | None, categorical: str | None,
                  config_file: str | None, version_name: str | None, eval_fraction: float, as_json: bool):
    """Train a version on your table, store and register it, and ingest its held-out predictions.

    A logistic regression (one-hot categories, standardised numbers, seeded) is fitted on the same
    training rows and scores the same held-out rows: the version's challenger, which `govern evaluate`
    evaluates too and `baseline: challenger` rules compare with.
    """
    from governance.service.training import load_config

    sensitive_columns = split_list(sensitive)
    config, chosen = load_config(Path(config_file) if config_file else None, sensitive=sensitive_columns)
    if categorical:
        config = replace(config, categorical=tuple(dict.fromkeys([*config.categorical, *split_list(categorical)])))
        chosen = chosen | {"categorical"}
    return service.train_version(
        model=model_name, data=Path(data), label=label, sensitive=sensitive_columns,
        intersections=_intersections(intersections), features=split_list(features) or None, config=config,
        version=version_name, eval_fraction=eval_fraction, progress=None if as_json else _show_epoch, chosen=chosen)


def _show_epoch(epoch: int, total: int, record: dict) -> bool:
    click.echo(render.epoch(epoch, total, record), err=True)
    return True


_intersections = intersections  # the command's own option shadows the name inside it


@click.command("predict")
@model_version_args
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Where to write the scored rows: a new .csv or .parquet file.")
@click.option("--score-column", default="score", show_default=True, help="The name of the column of scores.")
@click.option("--delimiter", type=DELIMITER, default=",", show_default=True,
              help="CSV field separator of FILE (\\t for a tab).")
@service_command(render.scored_file)
def predict_command(service, *, model_name: str, version_name: str, file: str, out: str, score_column: str,
                    delimiter: str):
    """Score a table's rows with a version `govern train` (or a retraining job) made.

    Writes every row of FILE with a score column (the calibrated probability of 1, the version's group
    offsets included) to --out, ready for `govern ingest MODEL VERSION OUT --split production` (with --id
    COL where its outcomes will come later through `govern labels`, and --sensitive for fairness per group).
    Nothing is stored; a value a categorical column never held in training scores as unseen, and the
    output counts such rows per column."""
    return service.predict_file(model=model_name, version=version_name, file=Path(file), out=Path(out),
                                score_column=score_column, delimiter=delimiter)


@click.command("lineage")
@model_version_args
@service_command(render.lineage)
def lineage_command(service, *, model_name: str, version_name: str):
    """The chain of versions back to the first: job, gate, failing rules, feedback and config of each."""
    return service.lineage(model=model_name, version=version_name)


COMMANDS = [model, version, train_command, predict_command, lineage_command]
