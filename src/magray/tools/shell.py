"""shell_exec: run an argv without a shell, inside the roots, with secrets scrubbed from the env.

The process runs in its own process group; on timeout the whole group is killed.
Output goes to a temporary file (never an unbounded pipe) and only the first
``output_cap`` characters come back, with a note when some were cut.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.paths import resolve_inside

SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without variables whose names look like secrets (API keys, tokens, passwords)."""
    return {
        name: value
        for name, value in env.items()
        if not any(marker in name.upper() for marker in SECRET_MARKERS)
    }


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished (or killed) process."""

    argv: tuple[str, ...]
    returncode: int | None
    output: str
    timed_out: bool
    truncated: bool
    duration_ms: int


def run_argv(
    argv: Sequence[str],
    cwd: Path,
    ctx: ToolContext,
    extra_env: Mapping[str, str] | None = None,
) -> Completed:
    """Run ``argv`` (no shell) in ``cwd``; stdout and stderr together, capped; killed on timeout."""
    if not argv:
        raise ToolError("the command is empty; give at least the program name.")
    env = scrub_env(ctx.base_env())
    env.update(extra_env or {})
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ToolError(f"program {argv[0]!r} was not found on PATH.") from None
        except PermissionError:
            raise ToolError(f"program {argv[0]!r} is not executable.") from None
        timed_out = False
        try:
            proc.wait(timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.seek(0)
        raw = out.read(ctx.output_cap * 4 + 4)
        size = out.seek(0, os.SEEK_END)
    text = raw.decode("utf-8", errors="replace")
    truncated = len(text) > ctx.output_cap or size > len(raw)
    if truncated:
        text = text[: ctx.output_cap] + (
            f"\n[… output truncated at {ctx.output_cap} characters; {size} bytes in all]"
        )
    return Completed(
        argv=tuple(argv),
        returncode=None if timed_out else proc.returncode,
        output=text,
        timed_out=timed_out,
        truncated=truncated,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


class ExecArgs(ToolArgs):
    argv: list[str] = Field(min_length=1, description="Program and arguments; no shell is used.")
    cwd: str | None = Field(None, description="Working folder inside the workspace.")


class ShellExec(Tool[ExecArgs]):
    name = "shell_exec"
    description = (
        "Run a program with arguments (argv list, no shell: no pipes, globs or variables) "
        "in the workspace, with a timeout and secrets removed from its environment."
    )
    risk = Risk.EXEC
    Args = ExecArgs
    path_fields = ("cwd",)

    def command(self, args: ExecArgs) -> list[str] | None:
        return list(args.argv)

    def preview(self, args: ExecArgs, ctx: ToolContext) -> str:
        cwd = resolve_inside(args.cwd or ".", ctx.roots)
        return f"(cd {shlex.quote(str(cwd))} && {shlex.join(args.argv)})"

    def run(self, args: ExecArgs, ctx: ToolContext) -> ToolResult:
        cwd = resolve_inside(args.cwd or ".", ctx.roots)
        if not cwd.is_dir():
            raise ToolError(f"working folder {args.cwd} is not a folder.")
        done = run_argv(args.argv, cwd, ctx)
        data: dict[str, Any] = {
            "argv": list(done.argv),
            "exit_code": done.returncode,
            "timed_out": done.timed_out,
            "truncated": done.truncated,
            "duration_ms": done.duration_ms,
        }
        if done.timed_out:
            error = f"timed out after {ctx.timeout:g} s; the process group was killed."
            return ToolResult(ok=False, output=done.output, data=data, error=error)
        if done.returncode != 0:
            error = f"exit status {done.returncode}"
            return ToolResult(ok=False, output=done.output, data=data, error=error)
        return ToolResult(ok=True, output=done.output, data=data)


TOOLS: tuple[Tool[Any], ...] = (ShellExec(),)
