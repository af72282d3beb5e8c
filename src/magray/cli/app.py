"""The Typer group class that turns MAGRAY errors into one red line and an exit code."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

import typer
from typer._click import exceptions as click_errors
from typer.core import TyperArgument, TyperGroup, _TyperParameter

from magray.cli import coercion
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


def unexpected_line(exc: BaseException) -> str:
    """The one line for an unexpected error, after its traceback went to the log file."""
    from magray.paths import resolve_paths

    what = f"unexpected {type(exc).__name__}: {exc}"
    try:
        log = resolve_paths().log_file
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as fh:
            fh.write("".join(traceback.format_exception(exc)))
    except (MagrayError, OSError):
        return (
            f"{what}; the log could not be written: run again with MAGRAY_DEBUG=1 to see"
            " the traceback."
        )
    return f"{what}. Full traceback in {log}."


def summary(help_text: str | None) -> str:
    """The first sentence of a command's help: what ``magray GROUP --help`` lists."""
    first = (help_text or "").strip().split("\n\n", 1)[0]
    first = " ".join(first.split())
    end = first.find(". ")
    return first[: end + 1] if end != -1 else first


def _display_type(self: Any, ctx: Any) -> str:
    """A readable value name for help: ``--tag TAG``, ``-k N``, not ``<list[str]>``."""
    desc = self.type_descriptor
    if desc.is_choice:
        return str(_typer_display_type(self, ctx))
    if getattr(self, "param_type_name", "") == "argument":
        return ""
    annotation = desc.annotation
    if annotation is int or desc.is_ranged:
        return "N"
    if annotation is float:
        return "NUMBER"
    if desc.is_path:
        return "PATH"
    return str(self.name or "value").upper()


def _usage_name(self: Any) -> str:
    """``TITLE`` for a required argument, ``[TEXT]`` for an optional one (not ``{title}``)."""
    name = str(self.display_name_raw).upper()
    name = name if self.required else f"[{name}]"
    return name + ("..." if self.nargs != 1 else "")


_typer_display_type = _TyperParameter.display_type
_TyperParameter.display_type = _display_type  # type: ignore[method-assign]
TyperArgument._usage_display_name = _usage_name  # type: ignore[method-assign]
coercion.install()


_SUBCOMMAND = "magray.subcommand"  # ctx.meta key: the subcommand being parsed


def _exit_on_usage_error(exc: Exception, path: str) -> None:
    """Print a command-line usage error as one sentence and exit 2; ignore anything else.

    ``path`` names the command being parsed (``magray memory search``), for the errors
    click raises before that command's context exists.
    """
    if not isinstance(exc, click_errors.UsageError):
        return  # --help and typer's exits pass through without loading the renderer
    from magray.cli import usage

    if usage.is_usage_error(exc):
        error_line(usage.usage_line(exc, path))
        raise typer.Exit(2) from None


class MagrayGroup(TyperGroup):
    """Maps ``MagrayError`` to its exit code and a one-sentence message."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """List subcommands with their first sentence, wrapped rather than cut with '...'."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.short_help or summary(command.help)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except Exception as exc:
            above = f"{parent.command_path} " if parent is not None else ""
            _exit_on_usage_error(exc, f"{above}{info_name or self.name}")
            raise

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            name, command, rest = super().resolve_command(ctx, args)
        except click_errors.UsageError as exc:
            if args and str(exc.message).startswith("No such command"):
                from magray.cli.usage import suggest_commands

                # every command (a lazy group's unloaded ones too), synonyms and short names
                close = suggest_commands(args[0], self.list_commands(ctx))
                hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                exc.message = f"No such command {args[0]!r}.{hint}"
            raise
        ctx.meta[_SUBCOMMAND] = f"{ctx.command_path} {name}"
        return name, command, rest

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
            _exit_on_usage_error(exc, ctx.meta.get(_SUBCOMMAND, ctx.command_path))
            if type(exc).__module__.startswith("typer") or _debug():
                raise  # typer's own exits, aborts and usage errors
            error_line(unexpected_line(exc))
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
