"""The Typer group class that turns MAGRAY errors into one red line and an exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from magray.errors import MagrayError


def _debug() -> bool:
    return bool(os.environ.get("MAGRAY_DEBUG")) or "PYTEST_CURRENT_TEST" in os.environ


def error_line(message: str) -> None:
    """Print a one-line error to stderr (red on a terminal)."""
    from rich.console import Console
    from rich.markup import escape

    # messages name config sections like [llm.providers.local]: not markup
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}", markup=True
    )


def _log_unexpected(exc: BaseException) -> str:
    from magray.paths import resolve_paths

    log = resolve_paths().log_file
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
    except OSError:
        return "(the log could not be written)"
    return str(log)


class MagrayGroup(TyperGroup):
    """Maps ``MagrayError`` to its exit code and a one-sentence message."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MagrayError as exc:
            error_line(exc.message)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            error_line("interrupted.")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()
            raise typer.Exit(0) from None
        except Exception as exc:
            if type(exc).__module__.startswith("typer") or _debug():
                raise  # typer's own exits, aborts and usage errors
            where = _log_unexpected(exc)
            error_line(f"unexpected {type(exc).__name__}: {exc}. Full traceback in {where}.")
            raise typer.Exit(1) from None


def new_app(help_text: str) -> typer.Typer:
    """A Typer app with MAGRAY's conventions."""
    return typer.Typer(
        cls=MagrayGroup,
        help=help_text,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )


class _ConsoleHandler(logging.Handler):
    """Shows the core's log warnings as MAGRAY-style lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        from magray.cli import render

        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            render.warn(message)
        else:
            render.note(message)


def configure_logging(verbose: bool = False) -> None:
    """Route the ``magray`` logger to stderr once (warnings, or info with ``verbose``)."""
    logger = logging.getLogger("magray")
    if not any(isinstance(h, _ConsoleHandler) for h in logger.handlers):
        logger.addHandler(_ConsoleHandler())
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
