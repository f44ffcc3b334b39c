"""Meta-tests: every command explains itself and is in the README; CI runs the README's test command."""

from __future__ import annotations

import click
import pytest

from tests.support.commands import COMMANDS
from tests.support.paths import ROOT

README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path, command", COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_command_has_help_and_is_in_the_readme(path, command):
    assert command.help and command.help.strip(), f"govern {' '.join(path)} has no help text"
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"option {param.opts} of govern {' '.join(path)} has no help"
    assert f"govern {' '.join(path)}" in README


def test_help_runs_for_every_command(run_cli, tmp_path):
    for path, _ in COMMANDS:
        result = run_cli(tmp_path, *path, "--help")
        assert result.exit_code == 0 and "Usage: " in result.output


def test_ci_runs_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    test_command = next(line for line in ci_lines if "pytest" in line)
    assert f"```bash\n{test_command}\n```" in README
