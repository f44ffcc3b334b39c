"""The `govern` command line: thin commands over the service API.

Exit codes: 0 success, 1 a negative verdict (a verification failed; later a blocked gate),
2 an error (bad input, not found, not allowed, store busy), with one sentence on stderr.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from evaluation.errors import MetricInputError
from governance import __version__
from governance.audit_export import FORMATS
from governance.errors import GovernError, InvalidInput
from governance.ingest import SPLITS, ColumnRoles
from governance.records import Record
from governance.render import records_table
from governance.roles import Role
from governance.service import RISK_TIERS, Service, verify_audit_export


class GovernGroup(click.Group):
    """Turns every foreseeable failure into one line on stderr and exit code 2.

    An unforeseen one is a bug, but still no traceback for the user: one line naming it, exit 2 (units of
    work roll back whole, so the store is as it was); GOVERN_DEBUG=1 shows the traceback.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for position, argument in enumerate(args, 1):
            try:
                argument.encode("utf-8")
            except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
                shown = argument.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")[:80]
                click.echo(f"error: argument {position} ({shown}) is not valid UTF-8 text.", err=True)
                ctx.exit(2)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (GovernError, MetricInputError) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except RecursionError:
            click.echo("error: the input is nested too deeply to process.", err=True)
            ctx.exit(2)
        except Exception as exc:
            if os.environ.get("GOVERN_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            click.echo(f"error: unexpected failure ({type(exc).__name__}: {first}); nothing was changed. Please "
                       "report it; GOVERN_DEBUG=1 shows the details.", err=True)
            ctx.exit(2)


def _settings(ctx: click.Context):
    from governance.config import resolve_settings

    options = ctx.find_root().obj
    return resolve_settings(home=options["home"], lock_timeout_s=options["lock_timeout"])


def _service(ctx: click.Context) -> Service:
    """The service acting as the user this command proves to be: GOVERN_TOKEN when set, else the session
    `govern login` saved for this store (for --as USER, that user's). Never an unproven name."""
    from governance import sessions

    settings = _settings(ctx)
    actor = ctx.find_root().obj["actor"]
    token = os.environ.get("GOVERN_TOKEN", "").strip() or None
    if token is None:
        token, actor = sessions.find(settings.store_id, actor)
    return Service.open(settings=settings, actor=actor, token=token, require_proof=True)


def _anonymous(ctx: click.Context) -> Service:
    """For the commands that act as nobody yet (init, login): no credential, no actor."""
    return Service.open(settings=_settings(ctx))


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: such a float is written null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any, **options: Any) -> str:
    """Strict JSON: non-finite floats as null, anything else unknown as its text."""
    plain = json.loads(json.dumps(value, default=str))  # dataclass dates and paths to text first
    return json.dumps(_finite(plain), allow_nan=False, **options)


def _emit(value: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        plain = [v.to_dict() for v in value] if isinstance(value, list) else (
            value.to_dict() if isinstance(value, Record) or hasattr(value, "to_dict") else value)
        click.echo(_dumps(plain, indent=2, sort_keys=True))
    elif text is not None:
        click.echo(text)


def _split_list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip()) if value else ()


def _intersections(value: str | None) -> tuple[tuple[str, ...], ...]:
    """'sex*race,sex*age_band' → (('sex', 'race'), ('sex', 'age_band'))."""
    return tuple(tuple(p.strip() for p in item.split("*")) for item in _split_list(value))


def _read_password(enabled: bool) -> str | None:
    if not enabled:
        return None
    try:
        return sys.stdin.readline().rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the password on stdin is not UTF-8 text.") from exc


json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


class Finite(click.FloatRange):
    """A float in a range that is also a number: NaN is refused (it compares false with every bound)."""

    name = "number"

    def convert(self, value, param, ctx):
        converted = super().convert(value, param, ctx)
        if converted != converted:
            self.fail(f"{value!r} is not a number.", param, ctx)
        return converted


SEED = click.IntRange(0, 2**32 - 1)
MAX_CLAIM_MINUTES = 7 * 24 * 60


@click.group(cls=GovernGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--home", envvar="GOVERN_HOME", type=click.Path(file_okay=False),
              help="Data home holding govern.duckdb and artifacts/ [env GOVERN_HOME; default ./govern-data].")
@click.option("--as", "actor", envvar="GOVERN_USER", metavar="USER",
              help="Act as this user [env GOVERN_USER], who must be logged in on this store (`govern login`); "
                   "GOVERN_TOKEN (an API token) proves the user instead. Default: the last user logged in.")
@click.option("--lock-timeout", type=Finite(0, 3600), default=None, metavar="SECONDS",
              help="How long to wait for a store held by another process [env GOVERN_LOCK_TIMEOUT; default 30].")
@click.version_option(__version__, prog_name="govern")
@click.pass_context
def cli(ctx: click.Context, home: str | None, actor: str | None, lock_timeout: float | None) -> None:
    """govern: evaluate model versions, gate releases on policies, review, retrain, and audit it all.

    Exit codes: 0 success, 1 a negative verdict (verification failed), 2 an error.
    """
    ctx.obj = {"home": home, "actor": actor, "lock_timeout": lock_timeout}
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING, stream=sys.stderr, force=True)


@cli.command()
@click.option("--admin", metavar="NAME", help="Create this first admin user (only on a store without users); "
                                               "they are logged in on this machine.")
@click.option("--password-stdin", is_flag=True, help="Read the admin's password from stdin (for `govern login` "
                                                     "and the dashboard).")
@json_option
@click.pass_context
def init(ctx: click.Context, admin: str | None, password_stdin: bool, as_json: bool) -> None:
    """Create the store in the data home (safe to run again) and bootstrap the first admin, logged in."""
    from governance import sessions

    service = _anonymous(ctx)
    result = service.bootstrap(admin=admin, password=_read_password(password_stdin))
    if result.session is not None:
        sessions.save(service.settings.store_id, result.session.user, result.session.secret,
                      result.session.expires_at)
    status = result.status
    _emit(status, as_json, f"store ready at {status.home} ({len(status.migrations)} migrations applied)"
          + (f"; admin {admin!r}" if admin else "")
          + (f", logged in until {result.session.expires_at:%Y-%m-%d %H:%M} UTC" if result.session else ""))


@cli.command()
@click.argument("name", metavar="USER")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin instead of prompting.")
@click.option("--expires", default="12h", show_default=True, metavar="DURATION",
              help="How long the session lasts: 30m, 12h, 7d (at most 366d).")
@json_option
@click.pass_context
def login(ctx: click.Context, name: str, password_stdin: bool, expires: str, as_json: bool) -> None:
    """Prove who you are with your password; the session is saved (0600) in your config folder for this
    store, and later commands act as USER until it expires or you log out."""
    from governance import sessions
    from governance.identity import os_user, parse_duration

    lifetime = parse_duration(expires)
    password = _read_password(True) if password_stdin else click.prompt(f"password for {name}", hide_input=True,
                                                                        err=True)
    service = _anonymous(ctx)
    session = service.sign_in(name=name, password=password or "", client=f"cli:{os_user()}", kind="session",
                              lifetime=lifetime)
    sessions.save(service.settings.store_id, session.user, session.secret, session.expires_at)
    _emit({k: v for k, v in session.to_dict().items() if k != "secret"}, as_json,
          f"logged in as {session.user} ({session.role}) until {session.expires_at:%Y-%m-%d %H:%M} UTC")


@cli.command()
@click.pass_context
def logout(ctx: click.Context) -> None:
    """End your session on this store (revoked in the store, removed from your config folder)."""
    from governance import sessions

    service = _service(ctx)
    revoked = service.logout()
    if service.actor:
        sessions.forget(service.settings.store_id, service.actor)
    click.echo(f"logged out {service.actor}" + (f" (session {revoked} revoked)" if revoked else ""))


@cli.command()
@json_option
@click.pass_context
def whoami(ctx: click.Context, as_json: bool) -> None:
    """Who this command would act as, and how it is authenticated."""
    me = _service(ctx).whoami()
    _emit(me, as_json, f"{me['user']} ({me['role']}), authenticated by {me['method']}"
          + (f" {me['token']}" if me.get("token") else ""))


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the store: location, migrations, counts and the audit chain head."""
    s = _service(ctx).status()
    witness = s.witness or {}
    _emit(s, as_json, "\n".join([
        f"home:            {s.home}",
        f"migrations:      {', '.join(s.migrations)}",
        f"users:           {s.users}",
        f"models:          {s.models}",
        f"versions:        {s.versions}",
        f"prediction sets: {s.prediction_sets}",
        f"audit events:    {s.audit_events} (head {s.audit_head[:16] + '…' if s.audit_head else 'none'})",
        f"witness:         {witness.get('witnessed', 0)} signed heads, "
        + ("the live chain matches" if witness.get("ok", True) else "MISMATCH"),
    ] + [f"PROBLEM: {problem}" for problem in s.problems]))
    ctx.exit(0 if s.ok else 1)


@cli.group(cls=GovernGroup)
def user() -> None:
    """Manage users and their roles (admins)."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]), help="The user's role.")
@click.option("--password-stdin", is_flag=True, help="Read a dashboard password from stdin (stored as argon2).")
@json_option
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Add a user with a role."""
    added = _service(ctx).add_user(name=name, role=role, password=_read_password(password_stdin))
    _emit(added, as_json, f"added user {added.name!r} as {added.role.value}")


@user.command("list")
@json_option
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """List users and their roles."""
    found = _service(ctx).list_users()
    _emit(found, as_json, "\n".join(f"{u.name}\t{u.role.value}" + ("" if u.enabled else "\tdisabled")
                                    for u in found) or "no users")


@user.command("disable")
@click.argument("name")
@json_option
@click.pass_context
def user_disable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Disable a user: their sessions and API tokens stop working at once (admins)."""
    changed = _service(ctx).set_user_enabled(name=name, enabled=False)
    _emit(changed, as_json, f"disabled {changed.name}")


@user.command("enable")
@click.argument("name")
@json_option
@click.pass_context
def user_enable(ctx: click.Context, name: str, as_json: bool) -> None:
    """Enable a disabled user again (admins)."""
    changed = _service(ctx).set_user_enabled(name=name, enabled=True)
    _emit(changed, as_json, f"enabled {changed.name}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin instead of prompting.")
@json_option
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool, as_json: bool) -> None:
    """Set a user's password: your own, or anyone's for admins."""
    password = _read_password(True) if password_stdin else click.prompt(
        f"new password for {name}", hide_input=True, confirmation_prompt=True, err=True)
    changed = _service(ctx).set_password(name=name, password=password)
    _emit(changed, as_json, f"password of {changed.name} changed")


@cli.group(cls=GovernGroup)
def token() -> None:
    """API tokens for CI and workers (admins create them; GOVERN_TOKEN uses one)."""


@token.command("create")
@click.argument("user_name", metavar="USER")
@click.option("--name", metavar="NAME", help="What the token is for (ci, worker-1).")
@click.option("--expires", default="90d", show_default=True, metavar="DURATION",
              help="How long it lasts: 30m, 12h, 90d (at most 366d).")
@json_option
@click.pass_context
def token_create(ctx: click.Context, user_name: str, name: str | None, expires: str, as_json: bool) -> None:
    """Create an API token for USER and print it once (it is stored hashed)."""
    from governance.identity import parse_duration

    issued = _service(ctx).create_token(user=user_name, name=name, lifetime=parse_duration(expires))
    _emit(issued, as_json, issued.secret)
    if not as_json:
        click.echo(f"token {issued.id} for {issued.user} ({issued.role}) until {issued.expires_at:%Y-%m-%d %H:%M} "
                   "UTC; shown once: use it as GOVERN_TOKEN", err=True)


@token.command("list")
@click.option("--user", "user_name", metavar="USER", help="Only this user's (admins see everyone's).")
@click.option("--sessions", is_flag=True, help="Include login and dashboard sessions.")
@json_option
@click.pass_context
def token_list(ctx: click.Context, user_name: str | None, sessions: bool, as_json: bool) -> None:
    """List tokens (never their secrets): id, user, kind, name, expiry, revoked."""
    found = _service(ctx).list_tokens(user=user_name, include_sessions=sessions)
    _emit([{k: v for k, v in t.to_dict().items() if k != "secret_sha256"} for t in found], as_json, "\n".join(
        f"{t.id}  {t.user:<12} {t.kind:<9} {t.name or '-':<12} expires {t.expires_at:%Y-%m-%d %H:%M}"
        + (f"  revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "") for t in found) or "no tokens")


@token.command("revoke")
@click.argument("token_id", metavar="ID")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token or session at once (admins any, others their own)."""
    revoked = _service(ctx).revoke_token(token_id=token_id)
    click.echo(f"revoked {revoked.id} ({revoked.kind} of {revoked.user})")


@cli.group(cls=GovernGroup)
def model() -> None:
    """Register and list models."""


@model.command("register")
@click.argument("name")
@click.option("--owner", metavar="USER", help="The accountable user (default: you).")
@click.option("--description", metavar="TEXT", help="What the model is for.")
@click.option("--risk-tier", type=click.Choice(RISK_TIERS), default="medium", show_default=True,
              help="Risk tier; policies can require more of high-risk models.")
@json_option
@click.pass_context
def model_register(ctx: click.Context, name: str, owner: str | None, description: str | None, risk_tier: str,
                   as_json: bool) -> None:
    """Register a model."""
    registered = _service(ctx).register_model(name=name, owner=owner, description=description, risk_tier=risk_tier)
    _emit(registered, as_json, f"registered model {registered.name!r} (risk tier {registered.risk_tier})")


@model.command("edit")
@click.argument("name")
@click.option("--description", metavar="TEXT", help="What the model is for.")
@click.option("--risk-tier", type=click.Choice(RISK_TIERS), help="Admins: the model's risk tier.")
@click.option("--min-approvals", type=click.IntRange(1, 20), metavar="N",
              help="Admins: raise the independent approvals every release needs above the risk tier's "
                   "(low/medium 1, high 2); never lower.")
@json_option
@click.pass_context
def model_edit(ctx: click.Context, name: str, description: str | None, risk_tier: str | None,
               min_approvals: int | None, as_json: bool) -> None:
    """Change a model's description, risk tier or approval floor (audited)."""
    changed = _service(ctx).edit_model(name=name, description=description, risk_tier=risk_tier,
                                       min_approvals=min_approvals)
    _emit(changed, as_json, f"{changed.name}: risk tier {changed.risk_tier}, approvals floor "
                            f"{changed.min_approvals or 'of the tier'}")


@model.command("list")
@json_option
@click.pass_context
def model_list(ctx: click.Context, as_json: bool) -> None:
    """List registered models."""
    found = _service(ctx).list_models()
    _emit(found, as_json, "\n".join(f"{m.name}\t{m.risk_tier}\t{m.owner or ''}" for m in found) or "no models")


@cli.group(cls=GovernGroup)
def version() -> None:
    """Register, list and show model versions."""


@version.command("register")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--artifact", required=True, type=click.Path(dir_okay=False), help="The model file to store.")
@click.option("--training-data", type=click.Path(dir_okay=False), help="CSV or Parquet the version was trained on.")
@click.option("--parent", metavar="VERSION", help="The version this one was derived from.")
@json_option
@click.pass_context
def version_register(ctx: click.Context, model_name: str, version_name: str, artifact: str,
                     training_data: str | None, parent: str | None, as_json: bool) -> None:
    """Register a version: its artifact (and training data) are stored by sha256."""
    registered = _service(ctx).register_version(
        model=model_name, version=version_name, artifact=Path(artifact),
        training_data=Path(training_data) if training_data else None, parent=parent)
    _emit(registered, as_json,
          f"registered {registered.model} version {registered.version} (artifact {registered.artifact_sha256[:12]}…)")


@version.command("list")
@click.argument("model_name", metavar="MODEL")
@json_option
@click.pass_context
def version_list(ctx: click.Context, model_name: str, as_json: bool) -> None:
    """List a model's versions."""
    found = _service(ctx).list_versions(model=model_name)
    _emit(found, as_json, "\n".join(
        f"{v.version}\t{v.status}\t{v.created_by}\t{v.created_at:%Y-%m-%d %H:%M}" for v in found) or "no versions")


@version.command("show")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@json_option
@click.pass_context
def version_show(ctx: click.Context, model_name: str, version_name: str, as_json: bool) -> None:
    """Show a version, its lineage and its prediction sets with their row counts."""
    detail = _service(ctx).show_version(model=model_name, version=version_name)
    v = detail.version
    lines = [
        f"{v.model} version {v.version} ({v.status})",
        f"  created:       {v.created_at:%Y-%m-%d %H:%M:%S} by {v.created_by}",
        f"  artifact:      {v.artifact_sha256}",
        f"  training data: {v.training_data_sha256 or '-'}"
        + (f" ({detail.training_data.row_count} rows)" if detail.training_data else ""),
        f"  parent:        {v.parent_version or '-'}",
        f"  prediction sets: {len(detail.prediction_sets) or 'none'}",
    ]
    lines += [
        f"    {p.id}  {p.split:<10} {p.row_count:>10} rows  {p.source_name}"
        + (f"  batch {p.batch_time:%Y-%m-%d %H:%M}" if p.batch_time else "")
        for p in detail.prediction_sets
    ]
    _emit(detail, as_json, "\n".join(lines))


@cli.command()
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--split", required=True, type=click.Choice(SPLITS),
              help="What the predictions are for. challenger: a benchmark model's scores on the same eval rows; "
                   "`govern evaluate` evaluates it with the eval set, and `baseline: challenger` rules compare "
                   "with it.")
@click.option("--label", default="label", show_default=True, help="Column with the true label (0 or 1).")
@click.option("--score", default="score", show_default=True, help="Column with the predicted probability of 1.")
@click.option("--id", "id_column", metavar="COL", help="Column with unique row ids (default: row position).")
@click.option("--sensitive", metavar="A,B", help="Sensitive feature columns (groups for fairness metrics).")
@click.option("--intersections", metavar="A*B,...", help=(
    "Sensitive columns judged together: sex*race makes the feature 'sex*race' with groups such as "
    "'female & white', with every fairness metric and small-group rule (rules name it as feature: sex*race)."))
@click.option("--features", metavar="X,Y", help="Feature columns to keep (default: every other column).")
@click.option("--batch-time", metavar="ISO8601", help="When the batch was scored (production batches).")
@click.option("--delimiter", default=",", show_default=True, help="CSV field separator.")
@json_option
@click.pass_context
def ingest(ctx: click.Context, model_name: str, version_name: str, file: str, split: str, label: str, score: str,
           id_column: str | None, sensitive: str | None, intersections: str | None, features: str | None,
           batch_time: str | None, delimiter: str, as_json: bool) -> None:
    """Validate a CSV or Parquet file of predictions and store it as a prediction set.

    Every problem in the file is reported at once; nothing is written unless the file is clean.
    """
    roles = ColumnRoles(label=label, score=score, id=id_column, sensitive=_split_list(sensitive),
                        features=_split_list(features) if features else None,
                        intersections=_intersections(intersections))
    prediction_set = _service(ctx).ingest(model=model_name, version=version_name, file=Path(file), split=split,
                                          roles=roles, batch_time=batch_time, delimiter=delimiter)
    _emit(prediction_set, as_json,
          f"ingested {prediction_set.row_count} rows as {prediction_set.id} ({split}) "
          f"for {model_name} version {version_name}")


@cli.command("evaluate")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--reference-split", type=click.Choice(["reference", "production"]), default="reference",
              show_default=True, help="Which of the version's own prediction sets drift is measured against.")
@click.option("--reference-version", metavar="VERSION",
              help="Measure drift against this version's reference set (or its eval set) instead.")
@click.option("--threshold", type=Finite(0, 1), default=0.5, show_default=True, help="Score at or above which we predict 1.")
@click.option("--resamples", type=click.IntRange(0, 10_000), default=200, show_default=True,
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap (0 to 2^32-1).")
@json_option
@click.pass_context
def evaluate_command(ctx: click.Context, model_name: str, version_name: str, reference_split: str,
                     reference_version: str | None, threshold: float, resamples: int, seed: int,
                     as_json: bool) -> None:
    """Compute and store every metric for a version's latest eval predictions (a new, immutable evaluation).

    Performance, calibration, fairness per sensitive column and drift against the reference. The
    version's challenger predictions (`govern train` makes them; `govern ingest --split challenger`
    registers your own) are evaluated too, with the same options and no drift: `baseline: challenger`
    rules compare with them.
    """
    service = _service(ctx)
    evaluation, metric_set = service.evaluate(
        model=model_name, version=version_name, reference_split=reference_split,
        reference_version=reference_version, threshold=threshold, resamples=resamples, seed=seed)
    challenger = service.challenger_evaluation(model=model_name, version=version_name)
    if as_json:
        click.echo(_dumps({"evaluation": evaluation.to_dict(), "records": metric_set.to_list(),
                           "challenger": {"label": challenger[0], "evaluation": challenger[1].to_dict(),
                                          "records": challenger[2].to_list()} if challenger else None},
                          indent=2, sort_keys=True))
    else:
        click.echo(f"evaluation {evaluation.id} of {model_name} version {version_name}: "
                   f"{evaluation.record_count} records, {metric_set.params['rows']} rows"
                   + (f"; {metric_set.params['drift']}" if "drift" in metric_set.params else ""))
        click.echo(records_table(metric_set.records))
        if challenger:
            label, stored, records = challenger
            shown = ", ".join(f"{name} {record.value:.4f}" for name in ("roc_auc", "accuracy")
                              if (record := records.find("performance", name)) and record.value is not None)
            click.echo(f"{label}: evaluation {stored.id}; {shown or 'no defined ROC AUC or accuracy'}")
        else:
            click.echo(f"no challenger predictions; `govern ingest {model_name} {version_name} FILE --split "
                       "challenger` registers a benchmark model's scores on the same eval rows")


@cli.command("monitor")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--batch", metavar="PREDICTION_SET", help="A production prediction set id (default: the latest batch).")
@click.option("--threshold", type=Finite(0, 1), default=0.5, show_default=True, help="Score at or above which we predict 1.")
@json_option
@click.pass_context
def monitor_command(ctx: click.Context, model_name: str, version_name: str, batch: str | None, threshold: float,
                    as_json: bool) -> None:
    """Evaluate a production batch against the reference; dataset drift files a drift_alert review item."""
    evaluation, metric_set, alert = _service(ctx).monitor(model=model_name, version=version_name, batch=batch,
                                                          threshold=threshold)
    if as_json:
        click.echo(_dumps({"evaluation": evaluation.to_dict(), "records": metric_set.to_list(), "alert": alert},
                          indent=2, sort_keys=True))
        return
    share = metric_set.find("drift", "share_of_drifted_columns")
    click.echo(f"batch {evaluation.prediction_set_id}: evaluation {evaluation.id}; share of drifted columns "
               f"{share.value if share else 'n/a'}" + (f"; DRIFT ALERT filed as {alert}" if alert else "; no alert"))


@cli.command("metrics")
@click.argument("current", type=click.Path(dir_okay=False))
@click.option("--reference", type=click.Path(dir_okay=False), help="Reference file for drift (CSV or Parquet).")
@click.option("--label", required=True, help="Column with the true label (0 or 1).")
@click.option("--score", required=True, help="Column with the predicted probability of 1.")
@click.option("--sensitive", metavar="A,B", help="Sensitive columns: fairness and calibration per group.")
@click.option("--intersections", metavar="A*B,...", help="Sensitive columns judged together (sex*race).")
@click.option("--features", metavar="X,Y", help="Columns to measure drift on (needs --reference).")
@click.option("--threshold", type=Finite(0, 1), default=0.5, show_default=True, help="Score at or above which we predict 1.")
@click.option("--resamples", type=click.IntRange(0, 10_000), default=200, show_default=True,
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the bootstrap (0 to 2^32-1).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="json prints a JSON array of records and nothing else.")
def metrics_command(current: str, reference: str | None, label: str, score: str, sensitive: str | None,
                    intersections: str | None, features: str | None, threshold: float, resamples: int, seed: int,
                    fmt: str) -> None:
    """Compute the metric records for files, without a store (CSV or Parquet)."""
    from evaluation import evaluate
    from governance.limits import max_groups

    metric_set = evaluate(current=Path(current), reference=Path(reference) if reference else None, label=label,
                          score=score, sensitive=_split_list(sensitive), features=_split_list(features),
                          threshold=threshold, resamples=resamples, seed=seed, max_groups=max_groups(),
                          intersections=_intersections(intersections))
    if fmt == "json":
        click.echo(_dumps(metric_set.to_list(), separators=(",", ":")))
    else:
        click.echo(records_table(metric_set.records))


@cli.command("compare")
@click.argument("model")
@click.argument("a")
@click.argument("b")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
              help="Significance level of the two-sided test.")
@click.option("--all", "show_all", is_flag=True, help="List every shared record, not only the significant ones.")
@json_option
@click.pass_context
def compare_command(ctx: click.Context, model: str, a: str, b: str, alpha: float, show_all: bool,
                    as_json: bool) -> None:
    """Compare two versions' latest evaluations: B − A for every shared record, and whether it is
    significant (normal test on the bootstrap intervals; conservative when both saw the same rows)."""
    differences = _service(ctx).compare_versions(model=model, a=a, b=b, alpha=alpha)
    if as_json:
        _emit(differences, True)
        return
    shown = differences if show_all else [d for d in differences if d.significant]
    lines = [f"{model}: version {b} against {a}, {len(differences)} shared records, "
             f"{sum(1 for d in differences if d.significant)} significant at alpha={alpha}"]
    for d in shown:
        where = f"[{d.feature}={d.group}]" if d.group else f"[{d.feature}]" if d.feature else ""
        verdict = {True: "significant", False: "not significant", None: "no interval"}[d.significant]
        diff = "n/a" if d.difference is None else f"{d.difference:+.4f}"
        p_value = "" if d.p_value is None else f" p={d.p_value:.3g}"
        lines.append(f"  {d.family:<11} {d.metric + where:<48} {_fmt(d.a)} → {_fmt(d.b)}  {diff}  {verdict}{p_value}")
    click.echo("\n".join(lines))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@cli.group(cls=GovernGroup)
def policy() -> None:
    """Policy packs (YAML): validate, register, assign. Shipped packs: default, strict (those names always
    mean the shipped packs). A binding gate runs the pack assigned to the model."""


@policy.command("validate")
@click.argument("file", metavar="FILE")
@json_option
@click.pass_context
def policy_validate(ctx: click.Context, file: str, as_json: bool) -> None:
    """Check a policy pack against the schema; exit 0 if valid, 2 with every problem named if not."""
    loaded = _anonymous(ctx).load_policy(Path(file))
    body = {"name": loaded.policy.name, "version": loaded.policy.version, "rules": len(loaded.policy.rules),
            "sha256": loaded.sha256, "valid": True}
    _emit(body, as_json, f"valid: {loaded.policy.name} v{loaded.policy.version}, {len(loaded.policy.rules)} rules, "
                         f"sha256 {loaded.sha256}")


@policy.command("register")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
@click.pass_context
def policy_register(ctx: click.Context, file: str, as_json: bool) -> None:
    """Register a pack under its name as that name's next version (admins; audited)."""
    pack = _service(ctx).register_policy(file=Path(file))
    _emit({k: v for k, v in pack.to_dict().items() if k != "text"}, as_json,
          f"registered policy {pack.name}@{pack.version} (sha256 {pack.sha256[:16]}…); assign it with "
          f"`govern policy assign {pack.name} --model MODEL`")


@policy.command("assign")
@click.argument("name", metavar="NAME[@VERSION]")
@click.option("--model", "model_name", metavar="MODEL", help="Assign to this model.")
@click.option("--tier", type=click.Choice(RISK_TIERS), help="Assign to every model of this risk tier.")
@json_option
@click.pass_context
def policy_assign(ctx: click.Context, name: str, model_name: str | None, tier: str | None, as_json: bool) -> None:
    """Make a registered or shipped pack the one binding gates run for a model or a risk tier (admins)."""
    assigned = _service(ctx).assign_policy(policy=name, model=model_name, tier=tier)
    version = f"@{assigned.policy_version}" if assigned.policy_version else " (shipped)"
    _emit(assigned, as_json, f"{assigned.scope} {assigned.target}: binding gates run {assigned.policy_name}{version}")


@policy.command("list")
@json_option
@click.pass_context
def policy_list(ctx: click.Context, as_json: bool) -> None:
    """Registered packs, shipped packs and assignments."""
    catalog = _service(ctx).policy_catalog()
    if as_json:
        _emit({"packs": [{k: v for k, v in p.to_dict().items() if k != "text"} for p in catalog.packs],
               "assignments": [a.to_dict() for a in catalog.assignments], "shipped": catalog.shipped}, True)
        return
    lines = [f"shipped: {', '.join(catalog.shipped)} (risk tiers low/medium: default, high: strict, unless assigned)"]
    lines += [f"{p.name}@{p.version}  sha256 {p.sha256[:16]}…  by {p.registered_by} {p.registered_at:%Y-%m-%d}"
              for p in catalog.packs]
    lines += [f"{a.scope} {a.target} → {a.policy_name}" + (f"@{a.policy_version}" if a.policy_version else "")
              for a in catalog.assignments]
    click.echo("\n".join(lines))


_MARK = {"passed": "PASS", "failed": "FAIL", "warned": "WARN", "insufficient": "INSUFFICIENT"}


class DefaultCommandGroup(GovernGroup):
    """A group whose first argument, when it names none of its commands (nor asks for help), goes to
    its `default` command: `govern gate credit 1` is `govern gate run credit 1`."""

    default = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@cli.group("gate", cls=DefaultCommandGroup)
def gate() -> None:
    """Run the release gate on a version, or show a stored decision.

    `govern gate MODEL VERSION [OPTIONS]` runs it (the same as `govern gate run`); `govern gate show
    MODEL VERSION` prints the stored decision. A model named `show` or `run` is gated with
    `govern gate run show VERSION`.
    """


@gate.command("run")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--policy", "policy_file", metavar="PACK",
              help="Binding: must be the model's assigned pack (the default). With --dry-run: any file, shipped "
                   "pack (default, strict) or registered pack (NAME or NAME@VERSION).")
@click.option("--dry-run", is_flag=True, help="Decide and report, but store and queue nothing.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Also write the decision as JUnit XML here.")
@json_option
@click.pass_context
def gate_command(ctx: click.Context, model_name: str, version_name: str, policy_file: str | None, dry_run: bool,
                 junit: str | None, as_json: bool) -> None:
    """Judge the version's latest evaluation against its assigned policy: exit 0 pass, 1 blocked, 2 error.

    Enforced, the decision is stored and logged, and failing rules queue review items and a
    retraining job as their on_fail says (never twice for the same evidence).
    """
    if junit and not Path(junit).parent.is_dir():
        raise InvalidInput(f"--junit {junit}: the folder {Path(junit).parent} does not exist.")
    outcome = _service(ctx).gate(model=model_name, version=version_name, policy=policy_file, dry_run=dry_run)
    decision = outcome.decision
    if junit:
        from policies.junit import junit_xml

        try:
            Path(junit).write_text(junit_xml(decision, model=model_name, version=version_name), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"the gate decision {outcome.gate_id or '(dry run)'} was made, but --junit {junit} "
                               f"could not be written ({exc.strerror}).") from exc
    if as_json:
        click.echo(_dumps(outcome.to_dict(), indent=2, sort_keys=True))
    else:
        lines = [decision.summary() + (" (dry run: nothing stored)" if dry_run else f" [{outcome.gate_id}]")]
        lines += [f"  {_MARK[r.status]:<12} {r.rule_id}: {r.reason}" for r in decision.results]
        if outcome.review_items or outcome.jobs:
            lines.append(f"queued {len(outcome.review_items)} review item(s) and {len(outcome.jobs)} job(s); "
                         "see `govern review list` and `govern jobs list`")
        click.echo("\n".join(lines))
    ctx.exit(0 if decision.verdict == "passed" else 1)


@gate.command("show")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--id", "gate_id", metavar="GATE_ID", help="A stored decision of the version (default: its latest).")
@json_option
@click.pass_context
def gate_show(ctx: click.Context, model_name: str, version_name: str, gate_id: str | None, as_json: bool) -> None:
    """Show a version's stored gate decision: verdict, mode, policy and evidence hashes, baseline, and per rule
    its status, the value judged, the threshold, rows, failing groups and reason.

    Any role may look. Exit 0 whatever the verdict (`govern gate` itself exits 1 when blocked); 2 when the
    version or the decision does not exist. --json prints the stored decision record.
    """
    from governance.render import gate_decision_text

    record = _service(ctx).gate_decision(model=model_name, version=version_name, gate_id=gate_id)
    _emit(record, as_json, gate_decision_text(record))


@cli.group(cls=GovernGroup)
def review() -> None:
    """The human review queue."""


@review.command("list")
@click.option("--model", "model_name", metavar="MODEL", help="Only this model's items.")
@click.option("--version", "version_name", metavar="VERSION", help="Only this version's items.")
@click.option("--status", type=click.Choice(["open", "claimed", "resolved", "dismissed"]), help="Only items in this state.")
@click.option("--kind", metavar="KIND",
              help="Only items of this kind: rule_failure, example, drift_alert, manual, override_expired, or "
                   "escalation (the retraining loop stopped without meeting the policy; engineers work these).")
@json_option
@click.pass_context
def review_list(ctx: click.Context, model_name: str | None, version_name: str | None, status: str | None,
                kind: str | None, as_json: bool) -> None:
    """List review items, oldest first."""
    items = _service(ctx).list_review_items(model=model_name, version=version_name, status=status, kind=kind)
    _emit(items, as_json, "\n".join(
        f"{i.id}  {i.model}/{i.version}  {i.kind:<13} {i.status:<8} {i.priority:<8} {i.rule_id or ''}"
        for i in items) or "no review items")


@review.command("show")
@click.argument("item_id", metavar="ID")
@json_option
@click.pass_context
def review_show(ctx: click.Context, item_id: str, as_json: bool) -> None:
    """Show an item's evidence, status and judgments."""
    detail = _service(ctx).show_review_item(item_id=item_id)
    i = detail.item
    lines = [f"{i.id}  {i.model}/{i.version}  {i.kind}  {i.status}  priority {i.priority}"
             + (f"  claimed by {i.assignee} until {i.claim_expires_at:%Y-%m-%d %H:%M}" if i.status == "claimed" else ""),
             f"  needs {i.judgments_required} judgment(s); rule {i.rule_id or '-'}; gate {i.gate_decision_id or '-'}",
             "  evidence: " + json.dumps(i.evidence, sort_keys=True, default=str)]
    lines += [f"  {j.reviewer}: {j.verdict}" + (f" → label {j.corrected_label}" if j.corrected_label is not None else "")
              + f"  “{j.comment}”" for j in detail.judgments]
    _emit(detail, as_json, "\n".join(lines))


@review.command("claim")
@click.argument("item_id", metavar="ID")
@click.option("--minutes", type=click.IntRange(1, MAX_CLAIM_MINUTES), default=60, show_default=True,
              help="How long the claim holds before others may take the item.")
@json_option
@click.pass_context
def review_claim(ctx: click.Context, item_id: str, minutes: int, as_json: bool) -> None:
    """Claim an item so that only you judge it (reviewers)."""
    item = _service(ctx).claim_review_item(item_id=item_id, minutes=minutes)
    _emit(item, as_json, f"claimed {item.id} until {item.claim_expires_at:%Y-%m-%d %H:%M} UTC")


@review.command("judge")
@click.argument("item_id", metavar="ID")
@click.option("--verdict", required=True, type=click.Choice(["label_correct", "label_wrong", "model_wrong", "ambiguous"]),
              help="What is wrong, if anything.")
@click.option("--label", type=click.IntRange(0, 1), help="With label_wrong: the corrected label, 0 or 1.")
@click.option("--comment", required=True, help="Why, in a sentence.")
@json_option
@click.pass_context
def review_judge(ctx: click.Context, item_id: str, verdict: str, label: int | None, comment: str,
                 as_json: bool) -> None:
    """Judge an item you claimed; it resolves when it has its required judgments."""
    item = _service(ctx).judge_review_item(item_id=item_id, verdict=verdict, label=label, comment=comment)
    _emit(item, as_json, f"judged {item.id}: now {item.status}")


@review.command("add")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--evidence", required=True, help="What to look at, as text or a JSON object.")
@click.option("--priority", type=click.Choice(["normal", "blocking"]), default="normal", show_default=True,
              help="Blocking items hold up release under an open_reviews rule.")
@click.option("--judgments", type=click.IntRange(1, 10), default=1, show_default=True,
              help="Independent judgments the item needs.")
@click.option("--due", metavar="ISO8601", help="When it should be done.")
@click.option("--gold-verdict", type=click.Choice(["label_correct", "label_wrong", "model_wrong", "ambiguous"]),
              help="Admins: make it a gold item with this known verdict.")
@click.option("--gold-label", type=click.IntRange(0, 1), help="Admins: the gold item's known corrected label.")
@json_option
@click.pass_context
def review_add(ctx: click.Context, model_name: str, version_name: str, evidence: str, priority: str, judgments: int,
               due: str | None, gold_verdict: str | None, gold_label: int | None, as_json: bool) -> None:
    """File a review item by hand (or, for admins, a gold item that measures reviewers)."""
    try:
        body = json.loads(evidence)
    except ValueError:
        body = {"note": evidence}
    except RecursionError as exc:
        raise InvalidInput("--evidence is nested too deeply; give at most 32 levels of JSON.") from exc
    if not isinstance(body, dict):
        body = {"note": body}
    gold = {"verdict": gold_verdict, "label": gold_label} if gold_verdict else None
    item = _service(ctx).add_review_item(model=model_name, version=version_name, evidence=body, priority=priority,
                                         judgments=judgments, due=due, gold=gold)
    _emit(item, as_json, f"filed {item.id} ({item.kind})")


@review.command("dismiss")
@click.argument("item_id", metavar="ID")
@click.option("--comment", required=True, help="Why the item needs no judgment.")
@json_option
@click.pass_context
def review_dismiss(ctx: click.Context, item_id: str, comment: str, as_json: bool) -> None:
    """Close an item without judging it."""
    item = _service(ctx).dismiss_review_item(item_id=item_id, comment=comment)
    _emit(item, as_json, f"dismissed {item.id}")


@cli.command("agreement")
@click.option("--model", "model_name", metavar="MODEL", help="Only this model's items.")
@click.option("--floor", type=Finite(0, 1), default=0.8, show_default=True,
              help="Flag reviewers whose gold accuracy falls below this.")
@json_option
@click.pass_context
def agreement_command(ctx: click.Context, model_name: str | None, floor: float, as_json: bool) -> None:
    """Reviewer agreement (Krippendorff's alpha, Cohen's kappa per pair) and gold-item accuracy."""
    result = _service(ctx).agreement(model=model_name, accuracy_floor=floor)

    def fmt(value: float | None) -> str:
        return "undefined" if value is None else f"{value:.3f}"

    lines = [f"items judged by 2+ reviewers: {result.items}; Krippendorff's alpha {fmt(result.alpha)}"]
    lines += [f"  kappa {p['reviewers'][0]} ~ {p['reviewers'][1]}: {fmt(p['cohens_kappa'])} over {p['items']} items"
              for p in result.pairs]
    lines += [f"  {r['reviewer']}: gold accuracy {r['gold_accuracy']:.2f} over {r['gold_judged']}"
              + ("  FLAGGED" if r["flagged"] else "") for r in result.reviewers]
    _emit(result, as_json, "\n".join(lines))


@cli.command("feedback")
@click.argument("model_name", metavar="MODEL")
@json_option
@click.pass_context
def feedback_command(ctx: click.Context, model_name: str, as_json: bool) -> None:
    """Snapshot reviewers' label corrections as the model's next feedback dataset (retraining reads it)."""
    result = _service(ctx).build_feedback(model=model_name)
    _emit(result, as_json, f"feedback dataset v{result['version']} of {model_name}: {result['corrections']} "
                           f"corrections, sha256 {result['sha256'][:16]}…" + ("" if result["new"] else " (unchanged)"))


@cli.command("signoff")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--approve", "decision", flag_value="approve", help="Approve the release.")
@click.option("--reject", "decision", flag_value="reject", help="Reject it (blocks release until withdrawn).")
@click.option("--withdraw", "decision", flag_value="withdraw", help="Withdraw your earlier decision.")
@click.option("--comment", default="", help="Why; required to reject.")
@click.option("--acknowledge-blocked", is_flag=True,
              help="Approve although the latest gate is blocked (recorded with the sign-off).")
@json_option
@click.pass_context
def signoff_command(ctx: click.Context, model_name: str, version_name: str, decision: str | None, comment: str,
                    acknowledge_blocked: bool, as_json: bool) -> None:
    """Approve or reject a version for release (reviewers and admins; never its creator).

    A decision binds to the artifact and the evaluation the latest gate judged: a new evaluation needs
    new approvals, and a rejection blocks that artifact under any version name until withdrawn."""
    if decision is None:
        raise InvalidInput("say --approve, --reject or --withdraw.")
    signoff = _service(ctx).sign_off(model=model_name, version=version_name, decision=decision, comment=comment,
                                     acknowledge_blocked=acknowledge_blocked)
    _emit(signoff, as_json, f"{signoff.reviewer} {_PAST[decision]} {model_name} version {version_name} "
                            f"(decision {signoff.revision})" if decision != "withdraw" else
          f"{signoff.reviewer} withdrew their decision on {model_name} version {version_name}")


_PAST = {"approve": "approved", "reject": "rejected", "withdraw": "withdrew"}


@cli.command("release")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@click.option("--override", is_flag=True, help="Admins: release despite the gate or approvals (marked).")
@click.option("--reason", help="With --override: why.")
@click.option("--expires", metavar="ISO8601", help="With --override: when the exception lapses.")
@json_option
@click.pass_context
def release_command(ctx: click.Context, model_name: str, version_name: str, override: bool, reason: str | None,
                    expires: str | None, as_json: bool) -> None:
    """Move the model's production alias to VERSION: needs a passing binding gate and independent
    approvals of that evidence (risk tier low/medium 1, high 2, or what the policy or an admin asks)."""
    move = _service(ctx).release(model=model_name, version=version_name, override=override, reason=reason,
                                 expires=expires)
    _emit(move, as_json, f"{model_name} production: {move.previous_version or '-'} → {move.version}"
                         + (f" (OVERRIDE by {move.actor}: {move.override_reason}; expires "
                            f"{move.override_expires:%Y-%m-%d %H:%M})" if move.action == "override" else ""))


@cli.command("rollback")
@click.argument("model_name", metavar="MODEL")
@click.option("--to", "to_version", metavar="VERSION", help="A version that was in production before.")
@json_option
@click.pass_context
def rollback_command(ctx: click.Context, model_name: str, to_version: str | None, as_json: bool) -> None:
    """Move production back to the previous released version (or --to one)."""
    move = _service(ctx).rollback(model=model_name, to=to_version)
    _emit(move, as_json, f"{model_name} production rolled back: {move.previous_version} → {move.version}")


@cli.command("history")
@click.argument("model_name", metavar="MODEL")
@json_option
@click.pass_context
def history_command(ctx: click.Context, model_name: str, as_json: bool) -> None:
    """Who moved the production alias, when, to which version and why (overrides marked)."""
    moves = _service(ctx).history(model=model_name)
    _emit(moves, as_json, "\n".join(
        f"{m.seq:>3}  {m.moved_at:%Y-%m-%d %H:%M}  {m.action:<8} {m.previous_version or '-'} → {m.version}  by {m.actor}"
        + (f"  OVERRIDE: {m.override_reason} ({'EXPIRED' if m.expired else 'expires'} "
           f"{m.override_expires:%Y-%m-%d %H:%M})" if m.action == "override" else "") for m in moves)
          or "no releases yet")


@cli.group(cls=GovernGroup)
def jobs() -> None:
    """Retraining jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["waiting_review", "queued", "running", "succeeded", "failed",
                                             "cancelled"]), help="Only jobs in this state.")
@json_option
@click.pass_context
def jobs_list(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List retraining jobs, oldest first."""
    found = _service(ctx).list_jobs(status=status)
    _emit(found, as_json, "\n".join(
        f"{j.id}  {j.model}/{j.version}  {j.status:<14} {'+'.join(j.strategies)}  rules: {', '.join(j.failing_rules)}"
        for j in found) or "no jobs")


@jobs.command("show")
@click.argument("job_id", metavar="ID")
@json_option
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: status, strategies, attempts, progress, error, resulting version, and the candidates
    its search tried (strategy and strength, validation accuracy and ECE, pass or what failed; * chosen)."""
    job = _service(ctx).show_job(job_id=job_id)
    progress = job.get("progress") or {}
    lines = [
        f"{job['id']}  {job['model']}/{job['version']}  {job['status']}  attempts {job['attempts']}",
        f"  strategies: {', '.join(job['strategies'])}; failing rules: {', '.join(job['failing_rules'])}",
        f"  progress: {'model ' + str(progress['model']) + ', ' if 'model' in progress else ''}"
        f"epoch {progress.get('epoch', '-')}/{progress.get('epochs', '-')}"
        + (f"; worker {job['lease_owner']}" if job.get("lease_owner") else ""),
        f"  result: version {job['result_version']}" if job.get("result_version") else
        f"  error: {job['error']}" if job.get("error") else "  result: -",
    ]
    if job.get("candidates"):
        lines.append(f"  candidates ({len(job['candidates'])}, judged on the validation split):")
        for c in job["candidates"]:
            metrics = c.get("metrics") or {}
            shown = "  ".join(f"{k} {_fixed(metrics.get(k))}" for k in ("accuracy", "ece"))
            verdict = "passes" if c["passes"] else "fails " + "; ".join(f.split(":")[0] for f in c["failing"])
            lines.append(f"  {'*' if c['chosen'] else ' '} {c['strategy']:<36} {shown}  {verdict}")
    _emit(job, as_json, "\n".join(lines))


def _fixed(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@jobs.command("cancel")
@click.argument("job_id", metavar="ID")
@json_option
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Cancel a job (a running one stops at its next epoch)."""
    job = _service(ctx).cancel_job(job_id=job_id)
    _emit(job, as_json, f"{job_id}: " + ("cancellation requested; it stops at the next epoch"
                                         if job["status"] == "running" else job["status"]))


@cli.command("worker")
@click.option("--once", is_flag=True, help="Run the jobs queued when it starts, then exit (no polling).")
@click.option("--max-jobs", type=click.IntRange(1, 1_000_000), help="Exit after this many jobs.")
@click.option("--lease", "lease_seconds", type=click.IntRange(5, 86_400), default=60, show_default=True,
              help="Seconds a job stays leased without a heartbeat before another worker may take it.")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=3, show_default=True,
              help="Lapsed leases after which a job is failed.")
@click.pass_context
def worker_command(ctx: click.Context, once: bool, max_jobs: int | None, lease_seconds: int,
                   max_attempts: int) -> None:
    """Claim retraining jobs with a lease and heartbeat, and run them (progress on stderr).

    Each job searches its strategies' strength against the model's policy, then registers, evaluates
    and gates the new version in one step. With --once only the jobs queued when the worker started
    run: a job that the new version's gate queues waits for the next run, so each call is one round of
    the loop. The loop stops on its own after the policy's max_rounds retrains (default 2), or when a
    retrain changed nothing or did not improve the flagged metric; it files an escalation item for
    engineers instead."""
    results = _service(ctx).run_worker(once=once, max_jobs=max_jobs, lease_seconds=lease_seconds,
                                       max_attempts=max_attempts, report=lambda line: click.echo(line, err=True))
    for result in results:
        click.echo(f"{result['job']}: {result['status']}" + (f" → version {result['version']}"
                                                              if result.get("version") else "")
                   + (f", gate {result['verdict']}" if result.get("verdict") else "")
                   + (f" by {', '.join(result['blocked_by'])}" if result.get("blocked_by") else "")
                   + (f"; escalated: {', '.join(result['escalations'])}" if result.get("escalations") else "")
                   + (f" ({result['error']})" if result.get("error") else ""))
    if not results:
        busy = _service(ctx).list_jobs(status="running")
        click.echo("no jobs to run" + (f" ({len(busy)} running under another worker's lease: "
                                       f"{', '.join(j.id for j in busy)})" if busy else ""))


@cli.command("train")
@click.argument("model_name", metavar="MODEL")
@click.option("--data", required=True, type=click.Path(dir_okay=False), help="Training table (CSV or Parquet).")
@click.option("--label", required=True, help="The label column (0 or 1).")
@click.option("--sensitive", metavar="A,B", help="Sensitive columns (fairness per group; kept in the predictions).")
@click.option("--intersections", metavar="A*B,...", help="Sensitive columns also judged together (sex*race).")
@click.option("--features", metavar="X,Y", help="Feature columns (default: every column but the label).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML or JSON with training settings (epochs, batch_size, learning_rate, hidden, seed, …).")
@click.option("--version", "version_name", metavar="V", help="Version name (default: the next number).")
@click.option("--eval-fraction", type=Finite(0, 1, min_open=True, max_open=True), default=0.25, show_default=True,
              help="Rows held out for evaluation.")
@json_option
@click.pass_context
def train_command(ctx: click.Context, model_name: str, data: str, label: str, sensitive: str | None,
                  intersections: str | None, features: str | None, config_file: str | None,
                  version_name: str | None, eval_fraction: float, as_json: bool) -> None:
    """Train a version on your table, store and register it, and ingest its held-out predictions.

    A logistic regression (one-hot categories, standardised numbers, seeded) is fitted on the same
    training rows and scores the same held-out rows: the version's challenger, which `govern evaluate`
    evaluates too and `baseline: challenger` rules compare with.
    """
    from governance.service.training import load_config

    sensitive_columns = _split_list(sensitive)
    config = load_config(Path(config_file) if config_file else None, sensitive=sensitive_columns)
    result = _service(ctx).train_version(
        model=model_name, data=Path(data), label=label, sensitive=sensitive_columns,
        intersections=_intersections(intersections), features=_split_list(features) or None, config=config, version=version_name, eval_fraction=eval_fraction,
        progress=None if as_json else _epoch_printer())
    _emit(result, as_json, f"trained {model_name} version {result.version.version} in {result.epochs} epochs; eval "
                           f"predictions {result.eval_set.id} ({result.eval_set.row_count} rows), challenger "
                           f"(logistic regression) {result.challenger_set.id}; next: "
                           f"`govern evaluate {model_name} {result.version.version}`")


def _epoch_printer():
    def show(epoch: int, total: int, record: dict) -> bool:
        click.echo(f"  epoch {epoch}/{total}  validation loss {record.get('validation_loss', 0):.4f}", err=True)
        return True

    return show


@cli.command("lineage")
@click.argument("model_name", metavar="MODEL")
@click.argument("version_name", metavar="VERSION")
@json_option
@click.pass_context
def lineage_command(ctx: click.Context, model_name: str, version_name: str, as_json: bool) -> None:
    """The chain of versions back to the first: job, gate, failing rules, feedback and config of each."""
    chain = _service(ctx).lineage(model=model_name, version=version_name)
    lines = []
    for v in chain:
        line = f"{v.model} version {v.version} ({v.created_at:%Y-%m-%d %H:%M} by {v.created_by})"
        if v.lineage:
            line += (f" ← {v.parent_version} by job {v.lineage.get('job')} for {', '.join(v.lineage['failing_rules'])}"
                     f" ({'+'.join(v.lineage['strategies'])}; {v.lineage['corrections_applied']} corrections)")
        lines.append(line)
    _emit(chain, as_json, "\n".join(lines))


@cli.group(cls=GovernGroup)
def audit() -> None:
    """Verify and export the tamper-evident decision log (auditors, admins)."""


@audit.command("verify")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.option("--key", metavar="HEX", envvar="GOVERN_AUDIT_KEY",
              help="With DIR (required): the installation's public key, as `govern audit key` prints it "
                   "[env GOVERN_AUDIT_KEY].")
@click.option("--since", type=click.Path(file_okay=False), metavar="EARLIER_EXPORT",
              help="With DIR: also prove this earlier export is a prefix of DIR (nothing rewritten in between).")
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, directory: str | None, key: str | None, since: str | None,
                 as_json: bool) -> None:
    """Verify the live chain (and the witness of signed heads), or with DIR an export, offline from its
    files and the installation's public key alone.

    Exit 0 when intact, 1 when tampering is detected (naming the event), 2 on an error.
    """
    if directory is None:
        if since or key:
            raise InvalidInput("--key and --since verify an export: give its folder (govern audit verify DIR).")
        report = _service(ctx).verify_audit()
        text = (f"audit chain intact: {report.event_count} events, head {report.head_hash}; "
                f"{report.witnessed or 0} witnessed heads match" if report.ok
                else f"audit chain BROKEN at seq {report.broken_seq}: {report.problem}")
    else:
        report = verify_audit_export(Path(directory), expected_public_key=key,
                                     since=Path(since) if since else None)
        text = (f"export intact: {report.row_count} events, head {report.head_hash}, signed by {report.public_key}"
                + (f"; extends {since} unchanged" if since else "")
                if report.ok else "export FAILED verification:\n  - " + "\n  - ".join(report.problems))
    _emit(report, as_json, text)
    ctx.exit(0 if report.ok else 1)


TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


@audit.command("list")
@click.option("--model", help="Events about this model, its versions, prediction sets, review items and jobs.")
@click.option("--actor", help="Events by this user.")
@click.option("--action", help="An action (review.judge) or its prefix (review).")
@click.option("--since", type=click.DateTime(TIME_FORMATS), help="From this time on (UTC unless an offset is given).")
@click.option("--until", type=click.DateTime(TIME_FORMATS),
              help="Up to this time; a date alone means the end of that day (UTC unless an offset is given).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="At most this many, newest first.")
@json_option
@click.pass_context
def audit_list(ctx: click.Context, model: str | None, actor: str | None, action: str | None, since: Any, until: Any,
               limit: int, as_json: bool) -> None:
    """List decision-log events, newest first, filtered by model, actor, action and time."""
    from datetime import timedelta

    if until is not None and (until.hour, until.minute, until.second, until.microsecond) == (0, 0, 0, 0):
        until = until + timedelta(days=1) - timedelta(microseconds=1)
    matched, events = _service(ctx).audit_events(model=model, actor=actor, action=action, since=since, until=until,
                                                 limit=limit)
    if as_json:
        _emit({"matched": matched, "events": [e.to_dict() for e in events]}, True)
        return
    lines = [f"{matched} event(s) matched" + (f"; the newest {len(events)} shown" if matched > len(events) else "")]
    lines += [f"  {e.seq:>6}  {e.ts}  {e.actor or '-':<12} {e.action:<20} {e.entity}" for e in events]
    click.echo("\n".join(lines))


@audit.command("export")
@click.option("--out", required=True, type=click.Path(), help="New folder to write the export into.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="jsonl", show_default=True,
              help="File format of the events; the manifest is always JSON.")
@json_option
@click.pass_context
def audit_export(ctx: click.Context, out: str, fmt: str, as_json: bool) -> None:
    """Export the whole log with a signed manifest (row count, head hash, file hashes)."""
    manifest = _service(ctx).export_audit(out=Path(out), fmt=fmt)
    _emit(manifest, as_json, f"exported {manifest['row_count']} events to {out} "
                             f"(head {manifest['head_hash'][:16]}…); verify with `govern audit verify {out}`")


@audit.command("witness")
@click.option("--reason", required=True, help="Why, e.g. the export the log was checked against.")
@json_option
@click.pass_context
def audit_witness(ctx: click.Context, reason: str, as_json: bool) -> None:
    """Witness the current head again where no witness line covers the latest events (a process died
    after its commit). Checks the chain first; a rewritten log stays flagged (auditors, admins)."""
    report = _service(ctx).rewitness(reason=reason)
    _emit(report, as_json, f"witnessed up to seq {report.covered}; " + (
        "the live chain matches the witness" if report.ok else "still wrong: " + " ".join(report.problems)))
    ctx.exit(0 if report.ok else 1)


@audit.command("key")
@click.pass_context
def audit_key(ctx: click.Context) -> None:
    """Print this installation's Ed25519 public key, which signs every export."""
    click.echo(_service(ctx).public_key())


@cli.command("demo")
@click.option("--home", "demo_home", type=click.Path(file_okay=False), default=None,
              help="A new folder for the demo's store (refused if it already holds one) [default: the global "
                   "--home or GOVERN_HOME, else ./govern-demo].")
@click.option("--quick", is_flag=True, help="A reduced run: 30% of the rows, 8 epochs, 20 resamples (under a minute).")
@click.option("--flip-rate", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of women's >50K labels the biased history records as <=50K.")
@click.option("--reviewer-accuracy", metavar="A,B,C", default="0.95,0.9,0.8", show_default=True,
              help="How often each simulated reviewer (rosa, ravi, remy) knows the true label.")
@json_option
@click.pass_context
def demo_command(ctx: click.Context, demo_home: str | None, quick: bool, flip_rate: float, reviewer_accuracy: str,
                 as_json: bool) -> None:
    """Run the whole loop on real data in a new store: train on biased labels, gate (blocked), review,
    retrain, gate (passes), sign off, release; then monitor ACS batches for drift by year.

    Progress goes to stderr; the summary (or with --json the summary as JSON) to stdout.
    """
    from governance.demo import DemoConfig, format_summary, run_demo

    demo_home = demo_home or ctx.find_root().obj["home"] or "govern-demo"
    try:
        accuracies = [float(part) for part in reviewer_accuracy.split(",")]
    except ValueError:
        raise InvalidInput(f"--reviewer-accuracy takes up to three numbers like 0.95,0.9,0.8, not {reviewer_accuracy!r}.")
    if not 1 <= len(accuracies) <= 3 or not all(0 <= a <= 1 for a in accuracies):
        raise InvalidInput("--reviewer-accuracy takes one to three probabilities between 0 and 1 (for rosa, ravi, "
                           "remy).")
    config = DemoConfig(flip_rate=flip_rate, reviewers=dict(zip(("rosa", "ravi", "remy"), accuracies)),
                        **(dict(sample=0.3, epochs=8, resamples=20, gold_items=6) if quick else {}))
    summary = run_demo(Path(demo_home), config, report=lambda line: click.echo(line, err=True))
    click.echo(_dumps(summary, indent=2, sort_keys=True) if as_json else format_summary(summary))


@cli.command("dashboard")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on.")
@click.option("--address", default="localhost", show_default=True,
              help="Address to listen on (0.0.0.0 to serve other machines; put TLS in front).")
@click.pass_context
def dashboard_command(ctx: click.Context, port: int, address: str) -> None:
    """Start the Streamlit dashboard (headless) on the store selected by --home / GOVERN_HOME."""
    import os

    from governance.config import resolve_settings

    home = _settings(ctx).home
    if not resolve_settings(home=home).database().exists():
        raise InvalidInput(f"no govern store at {home}; run `govern --home {home} init --admin NAME` "
                           f"or `govern demo --home {home}` first.")
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    click.echo(f"govern dashboard on http://{address}:{port} (store {home}); Ctrl-C stops it", err=True)
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
               "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
               "--client.showErrorDetails", "false"]  # no tracebacks with server paths in anyone's browser
    # Replace this process with the server, so signals (Ctrl-C, a supervisor's SIGTERM) reach it directly.
    os.execve(sys.executable, command, {**os.environ, "GOVERN_HOME": str(home)})


def main() -> None:
    cli(prog_name="govern")


if __name__ == "__main__":
    main()
