"""The store itself: create it, check it, run the demo in a new one, serve the dashboard on it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from governance.cli import render
from governance.cli.common import dumps, json_option, plain, read_password, service_command, settings
from governance.errors import InvalidInput


@click.command()
@click.option("--admin", metavar="NAME", help="Create this first admin user (only on a store without users); "
                                               "they are logged in on this machine.")
@click.option("--password-stdin", is_flag=True, help="Read the admin's password from stdin (for `govern login` "
                                                     "and the dashboard).")
@service_command(render.bootstrap, as_plain=lambda result: plain(result.status), anonymous=True)
def init(service, *, admin: str | None, password_stdin: bool):
    """Create the store in the data home (safe to run again) and bootstrap the first admin, logged in."""
    from governance import sessions

    result = service.bootstrap(admin=admin, password=read_password(password_stdin))
    if result.session is not None:
        sessions.save(service.settings.store_id, result.session.user, result.session.secret,
                      result.session.expires_at)
    return result


@click.command()
@service_command(render.store_status, exit_code=lambda s: 0 if s.ok else 1)
def status(service):
    """Show the store: location, migrations, counts and the audit chain head; exit 1 when something needs
    attention (the log differs from its witness, or a production version rests on an expired override)."""
    return service.status()


@click.command("demo")
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
        raise InvalidInput("--reviewer-accuracy takes up to three numbers like 0.95,0.9,0.8, not "
                           f"{reviewer_accuracy!r}.") from None
    if not 1 <= len(accuracies) <= 3 or not all(0 <= a <= 1 for a in accuracies):
        raise InvalidInput("--reviewer-accuracy takes one to three probabilities between 0 and 1 (for rosa, ravi, "
                           "remy).")
    config = DemoConfig(flip_rate=flip_rate, reviewers=dict(zip(("rosa", "ravi", "remy"), accuracies)),
                        **(dict(sample=0.3, epochs=8, resamples=20, gold_items=6) if quick else {}))
    summary = run_demo(Path(demo_home), config, report=lambda line: click.echo(line, err=True))
    click.echo(dumps(summary, indent=2, sort_keys=True) if as_json else format_summary(summary))


@click.command("dashboard")
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port to serve on.")
@click.option("--address", default="localhost", show_default=True,
              help="Address to listen on (0.0.0.0 to serve other machines; put TLS in front).")
@click.pass_context
def dashboard_command(ctx: click.Context, port: int, address: str) -> None:
    """Start the Streamlit dashboard (headless) on the store selected by --home / GOVERN_HOME."""
    import os

    from governance.config import resolve_settings

    home = settings(ctx).home
    if not resolve_settings(home=home).database().exists():
        raise InvalidInput(f"no govern store at {home}; run `govern --home {home} init --admin NAME` "
                           f"or `govern demo --home {home}` first.")
    app = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
    click.echo(f"govern dashboard on http://{address}:{port} (store {home}); Ctrl-C stops it", err=True)
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
               "--server.port", str(port), "--server.address", address, "--browser.gatherUsageStats", "false",
               "--client.showErrorDetails", "false",  # no tracebacks with server paths in anyone's browser
               "--client.toolbarMode", "viewer"]  # no Deploy button or developer menu for anyone
    # Replace this process with the server, so signals (Ctrl-C, a supervisor's SIGTERM) reach it directly.
    os.execve(sys.executable, command, {**os.environ, "GOVERN_HOME": str(home)})


COMMANDS = [init, status, demo_command, dashboard_command]
