"""The root command group: a command's module is imported only when that command runs.

``magray --help`` lists every command from the table in :mod:`magray.cli.main` (name,
where it lives, one-line summary) without importing any command module; a test keeps each
summary equal to the first sentence of the command's own help.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from magray.cli.app import MagrayGroup, summary


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A command (or command group) of ``magray``: ``target`` is ``module:attribute``."""

    name: str
    target: str
    summary: str


def load_command(entry: LazyCommand) -> Any:
    """Import ``entry``'s module and turn its Typer app or function into a click command."""
    import typer
    import typer.main

    module_name, attribute = entry.target.split(":")
    obj = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        command: Any = typer.main.get_group(obj)
    else:
        single = typer.Typer(
            rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False
        )
        single.command(entry.name)(obj)
        command = typer.main.get_command(single)
    command.name = entry.name
    return command


class LazyGroup(MagrayGroup):
    """A MAGRAY group whose commands come from ``lazy`` and load on first use."""

    lazy: tuple[LazyCommand, ...] = ()

    def _entries(self) -> dict[str, LazyCommand]:
        return {entry.name: entry for entry in self.lazy}

    def list_commands(self, ctx: Any) -> list[str]:
        names = [entry.name for entry in self.lazy]
        return names + [name for name in super().list_commands(ctx) if name not in names]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands:
            entry = self._entries().get(cmd_name)
            if entry is None:
                return super().get_command(ctx, cmd_name)
            self.commands[cmd_name] = load_command(entry)
        return self.commands[cmd_name]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List commands with the table's summaries: nothing is imported for ``--help``."""
        entries = self._entries()
        rows = []
        for name in self.list_commands(ctx):
            if name in entries and name not in self.commands:
                rows.append((name, entries[name].summary))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.short_help or summary(command.help)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
