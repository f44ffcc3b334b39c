"""Every command of the CLI, for the meta-tests and the generated-argument tests."""

from __future__ import annotations

import click

from governance.cli import cli

# Long-running or process-replacing commands the generated-argument test leaves to their own tests.
COMMANDS_SKIPPED_BY_FUZZ = {"demo", "dashboard", "worker", "train"}


def _commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        path = prefix + (name,)
        yield path, command
        if isinstance(command, click.Group):
            yield from _commands(command, path)


# (path, command) for every command and group, e.g. (("audit", "export"), <Command export>).
COMMANDS = list(_commands(cli))
