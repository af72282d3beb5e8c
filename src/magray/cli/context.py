"""Shared CLI plumbing: settings with flag overrides, opening the memory, parsing values."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from magray.errors import UsageError
from magray.views import iso as iso

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.memory.records import Layer
    from magray.memory.service import Memory
    from magray.runtime import Runtime


def settings(**overrides: Any) -> Settings:
    from magray.config import load_settings

    return load_settings(overrides)


def runtime(**overrides: Any) -> Runtime:
    """The services of this command, over the settings with ``overrides`` (flags) on top;
    their warnings are printed the CLI way. They are closed when the command ends (or
    earlier, by a ``with`` block)."""
    import click

    from magray.cli import render
    from magray.runtime import Runtime

    rt = Runtime(settings(**overrides), warn=render.warn)
    command = click.get_current_context(silent=True)
    if command is not None:
        command.call_on_close(rt.close)
    return rt


def open_memory(*, reading: bool = False, searching: bool = False, **overrides: Any) -> Memory:
    """The memory of this home. A command that only ``reading`` a home that has no store
    yet gets an empty one in a temporary folder: it creates nothing in the home. A command
    ``searching`` by meaning starts loading the embedding model first, on a thread, so the
    model loads while the store and its indexes open."""
    from magray.cli import render
    from magray.runtime import Runtime

    current = settings(**overrides)
    paths = current.paths
    if reading and current.memory.backend == "sqlite" and not paths.memory_db.exists():
        import atexit
        import dataclasses
        import shutil
        import tempfile
        from pathlib import Path

        empty = Path(tempfile.mkdtemp(prefix="magray-empty-"))
        atexit.register(shutil.rmtree, empty, ignore_errors=True)
        current = dataclasses.replace(current, paths=dataclasses.replace(paths, data_dir=empty))
    embedder = None
    if searching and current.search.mode != "keyword":
        from magray.embed import load_embedder

        embedder = load_embedder(current, background=True)
    return Runtime(current, warn=render.warn, embedder=embedder).open_memory()


def parse_layer(value: str) -> Layer:
    from magray.memory.records import Layer

    try:
        return Layer(value.strip().lower())
    except ValueError:
        choices = ", ".join(layer.value for layer in Layer)
        raise UsageError(f"unknown layer {value!r}; use one of {choices}.") from None


def parse_time(value: str | None, flag: str) -> float | None:
    """ISO date/time (UTC unless it says otherwise) → unix seconds."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{flag} wants an ISO date or time like 2026-01-31 or 2026-01-31T14:00 (got {value!r})."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def read_text(text: str | None, what: str = "the text") -> str:
    """The argument, or standard input when it is '-' or left out (like simonw/llm)."""
    if text is None or text == "-":
        if sys.stdin is None or sys.stdin.isatty():
            if text is None:
                raise UsageError(f"give {what} as an argument or pipe it in on standard input.")
            raise UsageError("'-' reads the text from standard input; pipe something in.")
        data = sys.stdin.buffer.read()
        try:
            return data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"standard input is not UTF-8 text (byte {data[exc.start]:#04x} at offset"
                f" {exc.start}); convert it first (for example with `iconv -t UTF-8`)."
            ) from None
    return utf8_arg(text, "the text", "check the terminal's encoding, or pipe the text in with '-'")


def utf8_arg(value: str, what: str, advice: str = "check the terminal's encoding") -> str:
    """``value`` if it is valid UTF-8 text; command-line bytes that are not arrive escaped."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what} is not valid UTF-8; {advice}.") from None
    return value


def nonblank(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """A callback for ``--project`` and ``--session``: one given must name something (an
    empty name would filter nothing, so ``forget --project ''`` would forget everything)."""
    if value is not None:
        flag = max(param.opts, key=len) if param.opts else str(param.name)
        utf8_arg(value, flag)
        if not value.strip():
            raise UsageError(f"{flag} is empty; give a name or leave {flag} out.")
    return value


def printable(text: str) -> str:
    """``text`` with control characters (a newline or an escape sequence in a file name)
    shown as escapes, so one name stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
