"""What a slow local model is doing right now, told to whoever shows it.

The first answer of the built-in local model can take half a minute: assembling the model
from its packages (once), loading it, reading the prompt before the first word. The core
says which step it is in through :func:`report`; the CLI installs a reporter (a spinner on a
terminal, one plain line per step when piped) and the core never prints or imports a UI
library for it. With no reporter, the one-time steps (assembling, downloading) are printed
as a plain line on stderr, as they always were; the others say nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """A slow step: its text, and whether it is worth a line only on a live display
    (``transient``: it happens on every call, like reading the prompt)."""

    text: str
    transient: bool = False


Reporter = Callable[[Step | None], None]  # a step, or None when the wait is over

_reporter: Reporter | None = None


def report(text: str, *, transient: bool = False, always: bool = False) -> None:
    """Say that a slow step starts (``always``: print it even with no reporter installed)."""
    if _reporter is not None:
        _reporter(Step(text, transient))
    elif always:
        print(f"magray: {text}…", file=sys.stderr, flush=True)


def done() -> None:
    """The wait is over (the first words arrived, or the call ended)."""
    if _reporter is not None:
        _reporter(None)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Send the steps to ``reporter`` inside the block."""
    global _reporter
    previous, _reporter = _reporter, reporter
    try:
        yield
    finally:
        _reporter = previous
        reporter(None)
