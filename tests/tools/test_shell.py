"""shell_exec: argv without a shell, timeouts that kill, output caps, a scrubbed environment."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from magray.errors import DeniedError
from magray.tools.base import ToolContext, ToolResult
from magray.tools.shell import ShellExec, scrub_env

SHELL = ShellExec()


def run(ctx: ToolContext, argv: list[str], cwd: str | None = None) -> ToolResult:
    return SHELL.run(SHELL.parse({"argv": argv, "cwd": cwd}), ctx)


def test_no_shell_injection(ctx: ToolContext) -> None:
    result = run(ctx, ["echo", "a; rm -rf /"])
    assert result.ok
    assert result.output == "a; rm -rf /\n"


def test_hung_command_is_killed_at_the_timeout(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=1)
    started = time.monotonic()
    result = run(ctx, ["sh", "-c", "sleep 30 & sleep 30"])
    assert time.monotonic() - started < 10
    assert not result.ok
    assert result.data["timed_out"] is True
    assert "timed out after 1 s" in (result.error or "")


def test_output_is_capped_with_a_note(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), output_cap=50)
    result = run(ctx, [sys.executable, "-c", "print('y' * 100000)"])
    assert result.output.startswith("y" * 50)
    assert "output truncated at 50 characters" in result.output
    assert result.data["truncated"] is True


def test_secrets_are_scrubbed_from_the_environment(workspace: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-x", "GH_TOKEN": "t", "HOME": "/tmp"}
    env["MAGRAY_ANTHROPIC_KEY"] = "k"
    ctx = ToolContext(roots=(workspace,), env=env)
    out = run(ctx, ["env"]).output
    assert "OPENAI_API_KEY" not in out and "sk-x" not in out
    assert "GH_TOKEN" not in out and "MAGRAY_ANTHROPIC_KEY" not in out
    assert "HOME=/tmp" in out
    assert scrub_env({"DB_PASSWORD": "p", "LANG": "C"}) == {"LANG": "C"}


def test_failing_command_reports_its_exit_status(ctx: ToolContext) -> None:
    result = run(ctx, ["sh", "-c", "echo oops >&2; exit 3"])
    assert not result.ok
    assert result.error == "exit status 3"
    assert result.output == "oops\n"


def test_cwd_must_stay_inside_the_roots(ctx: ToolContext, workspace: Path) -> None:
    assert run(ctx, ["pwd"], cwd="pkg").output.strip() == str(workspace / "pkg")
    with pytest.raises(DeniedError):
        run(ctx, ["pwd"], cwd="..")


def test_preview_shows_the_exact_argv(ctx: ToolContext) -> None:
    shown = SHELL.preview(SHELL.parse({"argv": ["echo", "a b"]}), ctx)
    assert shown.endswith("&& echo 'a b')")
