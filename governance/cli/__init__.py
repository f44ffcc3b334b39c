"""The `govern` command line: thin commands over the service API.

Exit codes: 0 success, 1 a negative verdict (a blocked gate, a failed verification or retraining job),
2 an error (bad input, not found, not allowed, store busy), with one sentence on stderr.

The commands live by area (account, models, evaluation, policies, gates, reviews, releases, jobs,
audit, store); `common` holds what they share (the error-mapping group, `service_command`, options)
and `render` the text of each result. Nothing here imports pandas, numpy, torch or the metric engine
at import time: a command imports what it needs when it runs.
"""

from __future__ import annotations

import logging
import os
import sys

import click

from governance import __version__
from governance.cli import (
    account,
    audit,
    evaluation,
    gates,
    jobs,
    labels,
    models,
    policies,
    readiness,
    releases,
    reports,
    reviews,
    store,
)
from governance.cli.common import Finite, GovernGroup


def _named(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """--as given, but empty: a script's `--as "$REVIEWER"` with the variable unset had acted as whoever logged
    in last, an admin included."""
    if value is not None and not value.strip():
        if ctx.get_parameter_source("actor") is click.core.ParameterSource.ENVIRONMENT:
            raise click.BadParameter("is blank; give a user's name, or unset it to act as the last user logged in.",
                                     param_hint="GOVERN_USER")
        raise click.BadParameter("is empty; give a user's name, or leave --as out to act as the last user logged "
                                 "in.")
    if value is None and os.environ.get("GOVERN_USER") is not None:  # click reads an empty variable as unset
        raise click.BadParameter("is set but empty; give a user's name, or unset it to act as the last "
                                 "user logged in.", param_hint="GOVERN_USER")
    return value


@click.group(cls=GovernGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", envvar="GOVERN_HOME", type=click.Path(file_okay=False),
              help="Data home holding govern.duckdb and artifacts/ [env GOVERN_HOME; default ./govern-data].")
@click.option("--as", "actor", envvar="GOVERN_USER", metavar="USER", callback=_named,
              help="Act as this user [env GOVERN_USER], who must be logged in on this store (`govern login`); "
                   "GOVERN_TOKEN (an API token) proves the user instead. Default: the last user logged in.")
@click.option("--lock-timeout", type=Finite(0, 3600), default=None, metavar="SECONDS",
              help="How long to wait for a store held by another process [env GOVERN_LOCK_TIMEOUT; default 30].")
@click.version_option(__version__, prog_name="govern")
@click.pass_context
def cli(ctx: click.Context, home: str | None, actor: str | None, lock_timeout: float | None) -> None:
    """govern: evaluate model versions, gate releases on policies, review, retrain, and audit it all.

    Exit codes: 0 success, 1 a negative verdict (gate blocked, verification failed, a retraining job
    failed), 2 an error.
    """
    ctx.obj = {"home": home, "actor": actor, "lock_timeout": lock_timeout}
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr, force=True)


for area in (store, account, models, evaluation, policies, gates, reviews, releases, readiness, jobs, audit,
             reports, labels):
    for command in area.COMMANDS:
        cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="govern")
    except OSError as exc:  # `govern --help > /dev/full`: click writes help and the version itself
        try:
            click.echo(f"error: the output could not be written ({exc.strerror or exc}).", err=True)
        except OSError:
            pass
        sys.exit(2)


__all__ = ["cli", "main"]
