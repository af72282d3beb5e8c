"""The only place that formats output for humans (rich tables, panels, progress)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A yellow warning line on stderr."""
    err.print(f"[yellow]warning:[/] {message}")


def note(message: str) -> None:
    """A dim informational line on stderr."""
    err.print(f"[dim]{message}[/]")


def config_table(rows: Sequence[Mapping[str, Any]], paths: Mapping[str, str]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from", style="dim")
    for row in rows:
        table.add_row(row["key"], repr(row["value"]), row["source"])
    out.print(table)
    for name, path in paths.items():
        out.print(f"[dim]{name}:[/] {path}")


class ProgressBar:
    """A progress callback: a rich bar on a TTY, silent when stderr is piped."""

    def __init__(self, progress: Progress | None, label: str) -> None:
        self._progress = progress
        self._task = progress.add_task(label, total=None) if progress else None

    def __call__(self, done: int, total: int | None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)


@contextmanager
def progress(label: str) -> Iterator[ProgressBar]:
    """Context manager yielding a ``(done, total)`` callback that draws a progress bar."""
    if not sys.stderr.isatty():
        yield ProgressBar(None, label)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield ProgressBar(bar, label)
