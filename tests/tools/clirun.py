"""Running `magray` in-process for the tools suite: the CLI runner, one tool call, audit rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.tools.audit import AuditLog

RUNNER = CliRunner()


def run(args: Sequence[str]) -> Result:
    """``magray ARGS``; an exception other than SystemExit is raised, not swallowed."""
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def tool(workspace: Path, name: str, *args: str, yes: bool = False) -> Result:
    """``magray tools run NAME --root WORKSPACE --arg A ... [--yes]``."""
    argv = ["tools", "run", name, "--root", str(workspace)]
    for arg in args:
        argv += ["--arg", arg]
    return run([*argv, "--yes"] if yes else argv)


def audit_rows(home: Path) -> list[Any]:
    """The audit rows under ``MAGRAY_HOME``, oldest first."""
    return AuditLog(home / "data" / "audit.db").rows()
