"""What every `govern` command shares: the group that turns failures into one line and an exit code,
opening the service as the proven user, `--json` or text output, and the shared options and types.

A command over the service is a function of the opened service that returns a result:

    @review.command("list")
    @click.option("--status", ...)
    @service_command(render.review_items)
    def review_list(service: Service, *, status: str | None) -> list[ReviewItem]:
        \"\"\"List review items, oldest first.\"\"\"
        return service.list_review_items(status=status)

`service_command` adds `--json`, opens the service on first use and prints the result.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

import click

from governance.errors import GovernError, InvalidInput, NotAllowed

if TYPE_CHECKING:
    from governance.service import Service


def _metric_input_error(exc: Exception) -> bool:
    """evaluation's MetricInputError, recognised without importing evaluation (which loads the engine)."""
    return any(cls.__name__ == "MetricInputError" and cls.__module__.startswith("evaluation")
               for cls in type(exc).__mro__)


class OutputFailed(Exception):
    """A command's work was done (committed, where it changed anything: the argument) but printing its
    result failed."""


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
        except GovernError as exc:
            click.echo(f"error: {_at_most(str(exc))}", err=True)
            ctx.exit(2)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except RecursionError:
            click.echo("error: the input is nested too deeply to process.", err=True)
            ctx.exit(2)
        except OutputFailed as exc:
            if os.environ.get("GOVERN_DEBUG"):
                raise
            cause = exc.__cause__ or exc
            first = (str(cause).strip().splitlines() or [""])[0][:300]
            if not exc.args or not exc.args[0]:  # a read: nothing stored, nothing to repeat with care
                _echo_err(f"error: the command changed nothing, but its output could not be written "
                          f"({type(cause).__name__}: {first}).")
                ctx.exit(2)
            _echo_err(f"error: the command finished and what it did is stored, but printing its result failed "
                      f"({type(cause).__name__}: {first}); do not run it again blindly: `govern audit list` shows "
                      "what was recorded. Please report it; GOVERN_DEBUG=1 shows the details.")
            ctx.exit(1)
        except OSError as exc:  # a full disk, a path the system refuses: the system's own words
            if os.environ.get("GOVERN_DEBUG"):
                raise
            where = f" ({str(exc.filename)[:300]})" if exc.filename else ""
            _echo_err(f"error: {exc.strerror or type(exc).__name__}{where}; nothing was changed.")
            ctx.exit(2)
        except Exception as exc:
            if _metric_input_error(exc):
                click.echo(f"error: {exc}", err=True)
                ctx.exit(2)
            if os.environ.get("GOVERN_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            click.echo(f"error: unexpected failure ({type(exc).__name__}: {first}); nothing was changed. Please "
                       "report it; GOVERN_DEBUG=1 shows the details.", err=True)
            ctx.exit(2)


MAX_MESSAGE = 8_000  # characters of an error message: past that, hostile input echoed back, not advice


def _at_most(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    half = MAX_MESSAGE // 2
    return f"{message[:half]} … ({len(message) - MAX_MESSAGE:,} characters cut) … {message[-half:]}"


def _echo_err(message: str) -> None:
    """A message on stderr, even where stderr itself cannot be written (nothing more can be done then)."""
    try:
        click.echo(message, err=True)
    except OSError:
        pass


class DefaultCommandGroup(GovernGroup):
    """A group whose first argument, when it names none of its commands (nor asks for help), goes to
    its `default` command: `govern gate credit 1` is `govern gate run credit 1`."""

    default = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


# -- the service, as the user this command proves to be ---------------------------------------------------

def settings(ctx: click.Context):
    from governance.config import resolve_settings

    options = ctx.find_root().obj
    return resolve_settings(home=options["home"], lock_timeout_s=options["lock_timeout"])


def open_service(ctx: click.Context) -> Service:
    """The service acting as the user this command proves to be: GOVERN_TOKEN when set, else the session
    `govern login` saved for this store (for --as USER, that user's). Never an unproven name."""
    from governance import sessions
    from governance.service import Service

    found = settings(ctx)
    actor = ctx.find_root().obj["actor"]
    given = os.environ.get("GOVERN_TOKEN")
    if given is not None and not given.strip():  # a CI step's GOVERN_TOKEN="$SECRET" with the secret unset
        raise InvalidInput("GOVERN_TOKEN is set but empty; set it to an API token, or unset it to act through a "
                           "saved session (`govern login`).")
    token = given.strip() if given else None
    if token is None:
        token, actor = sessions.find(found.store_id, actor)
        still = sessions.saved_users(found.store_id) if actor is None else []
        if still:
            raise NotAllowed(f"no user acts by default since the last one logged out: pass --as with a user still "
                             f"logged in on this store ({', '.join(name[:60] for name in still[:10])}), or `govern "
                             "login USER`.")
    return Service.open(settings=found, actor=actor, token=token, require_proof=True)


def open_anonymous(ctx: click.Context) -> Service:
    """For the commands that act as nobody yet (init, login, policy validate): no credential, no actor."""
    from governance.service import Service

    return Service.open(settings=settings(ctx))


class LazyService:
    """The command's service, opened at its first use: a command refuses its own arguments before any
    store or session is looked at, and `govern audit verify DIR` never needs one."""

    def __init__(self, opener: Callable[[], Service]) -> None:
        self._opener = opener
        self._service: Service | None = None

    def changed_anything(self) -> bool:
        """Whether the command's service committed a change (an audited unit of work)."""
        return self._service is not None and self._service.committed_changes > 0

    def __getattr__(self, name: str) -> Any:
        if self._service is None:
            self._service = self._opener()
        return getattr(self._service, name)


def service_command(render: Callable[[Any], str] | None = None, *, json_output: bool = True,
                    as_plain: Callable[[Any], Any] | None = None, exit_code: Callable[[Any], int] | None = None,
                    note: Callable[[Any], str] | None = None, anonymous: bool = False) -> Callable:
    """Make `body(service, **options)` a click command callback over the service.

    The service is opened on first use (as the proven user, or with `anonymous` as nobody). The body's
    result is printed: with `json_output`, the command takes --json and prints `as_plain(result)` (default:
    its records' to_dict()) as strict JSON; else `render(result)`, then `note(result)` on stderr. A renderer
    that needs the command's options names them as keyword-only parameters (`def trained(result, *,
    model_name)`). `exit_code` maps the result to the exit status (a negative verdict is 1). A body that
    declares `as_json` is told. Domain errors become one line and exit 2 in the group (GovernGroup), for
    every command alike.
    """
    def decorate(body: Callable) -> Callable:
        wants_json = "as_json" in inspect.signature(body).parameters

        @functools.wraps(body)
        def command(**options: Any) -> None:
            ctx = click.get_current_context()
            as_json = options.pop("as_json", False)
            if wants_json:
                options["as_json"] = as_json
            service = LazyService(lambda: open_anonymous(ctx) if anonymous else open_service(ctx))
            try:
                result = body(service, **options)
                try:
                    if as_json:
                        click.echo(dumps(as_plain(result) if as_plain else plain(result), indent=2, sort_keys=True))
                    elif render is not None:
                        click.echo(_render(render, result, options))
                        if note is not None:
                            click.echo(note(result), err=True)
                except (click.exceptions.Exit, click.exceptions.Abort):
                    raise
                except Exception as exc:  # the work is done and stored: never report it as "nothing was changed"
                    raise OutputFailed(service.changed_anything()) from exc
            except (KeyboardInterrupt, click.exceptions.Abort) as stopped:  # click's "Aborted!" said neither
                # Abort: a prompt got no answer (its input ended, or Ctrl-C at the prompt: click tells them apart
                # to nobody); exit 2, as for any input the command cannot use
                interrupted = isinstance(stopped, KeyboardInterrupt)
                _echo_err(("interrupted: " if interrupted else "error: a prompt got no answer (its input ended, or "
                           "Ctrl-C); ") + (
                    "what the command had finished is stored (units of work are whole); `govern audit list` shows "
                    "what was recorded." if service.changed_anything() else "nothing was changed."))
                ctx.exit(130 if interrupted else 2)
            if exit_code is not None:
                ctx.exit(exit_code(result))

        return json_option(command) if json_output else command

    return decorate


def _render(render: Callable[..., str], result: Any, options: dict[str, Any]) -> str:
    wanted = [p.name for p in inspect.signature(render).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return render(result, **{name: options[name] for name in wanted})


# -- output -------------------------------------------------------------------------------------------------

def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: such a float is written null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """Strict JSON: non-finite floats as null, anything else unknown as its text."""
    plain_value = json.loads(json.dumps(value, default=str))  # dataclass dates and paths to text first
    return json.dumps(_finite(plain_value), allow_nan=False, **options)


def plain(value: Any) -> Any:
    """A result as JSON-ready data: a record (or each record of a list) as its to_dict()."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value.to_dict() if hasattr(value, "to_dict") else value


def without(record: Any, *keys: str) -> dict[str, Any]:
    """A record's dict without secrets or bulky text."""
    return {k: v for k, v in record.to_dict().items() if k not in keys}


# -- options, arguments and types shared by commands ---------------------------------------------------------

json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")


def model_version_args(command: Callable) -> Callable:
    """MODEL VERSION, as `model_name` and `version_name`."""
    command = click.argument("version_name", metavar="VERSION")(command)
    return click.argument("model_name", metavar="MODEL")(command)


class Finite(click.FloatRange):
    """A float in a range that is also a number: NaN is refused (it compares false with every bound)."""

    name = "number"

    def convert(self, value, param, ctx):
        converted = super().convert(value, param, ctx)
        if converted != converted:
            self.fail(f"{value!r} is not a number.", param, ctx)
        return converted


class LazyChoice(click.Choice):
    """A choice among the values of `module.name`, imported only when the choices are needed (the
    command's help, or its option given), so that `govern` starts without loading that module."""

    def __init__(self, module: str, name: str) -> None:
        self._where = (module, name)
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        module, name = self._where
        return tuple(getattr(importlib.import_module(module), name))

    @choices.setter
    def choices(self, value: Any) -> None:  # click.Choice.__init__ assigns them; they are read lazily
        pass


class TimeText(click.DateTime):
    """Read as click.DateTime reads it (same formats and messages), but a date alone is handed on as a
    `date`, so that the service can tell a day from a moment (governance.service.times)."""

    def convert(self, value, param, ctx):
        moment = super().convert(value, param, ctx)
        if isinstance(value, str):
            try:
                return datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError:
                pass
        return moment


class Delimiter(click.ParamType):
    """A CSV field separator: one character, or `\\t` / `tab` for a tab (what a shell passes for '\\t')."""

    name = "CHAR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = {"\\t": "\t", "tab": "\t"}.get(str(value), str(value))
        if len(text) != 1:
            self.fail(f"must be one character (or \\t for a tab), not {value!r}", param, ctx)
        return text


DELIMITER = Delimiter()
RISK_TIER = LazyChoice("governance.service.registry", "RISK_TIERS")
SEED = click.IntRange(0, 2**32 - 1)
MAX_CLAIM_MINUTES = 7 * 24 * 60
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]


def split_list(value: str | None) -> tuple[str, ...]:
    """'sex, race' → ('sex', 'race'); None → (). A list given with an empty name is refused: `--sensitive ","` (a
    script's `--sensitive "$COLUMNS"`, say, with the variable unset) had meant "no sensitive columns"."""
    if value is None:
        return ()
    parts = tuple(part.strip() for part in value.split(","))
    if not all(parts):
        shown = repr(value) if len(value) <= 80 else repr(value[:77]) + "…"
        raise InvalidInput(f"the list {shown} holds an empty name; give column names separated by commas, none "
                           "left empty.")
    return parts


def intersections(value: str | None) -> tuple[tuple[str, ...], ...]:
    """'sex*race,sex*age_band' → (('sex', 'race'), ('sex', 'age_band'))."""
    return tuple(tuple(p.strip() for p in item.split("*")) for item in split_list(value))


def read_password(enabled: bool) -> str | None:
    if not enabled:
        return None
    try:  # at most one character past the longest password accepted: /dev/zero on stdin grew without bound
        line = sys.stdin.readline(MAX_PASSWORD_CHARS + 2)
    except UnicodeDecodeError as exc:
        raise InvalidInput("the password on stdin is not UTF-8 text.") from exc
    password = line.rstrip("\r\n")
    try:  # a locale's surrogateescape hands bytes that are not UTF-8 over as lone surrogates
        password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("the password on stdin is not UTF-8 text.") from None
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidInput(f"the password on stdin is longer than {MAX_PASSWORD_CHARS:,} characters (or stdin is no "
                           "line of text).")
    return password


MAX_PASSWORD_CHARS = 1024  # as the service's own limit
