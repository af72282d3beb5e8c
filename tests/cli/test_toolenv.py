"""Workspace roots, timeouts and private hosts from the runtime (`magray run`, `magray tools`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.errors import UsageError
from magray.runtime import Runtime

RUNNER = CliRunner()


def test_roots_come_from_flags_then_settings_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    monkeypatch.chdir(c)
    assert Runtime(load_settings()).workspace_roots([]) == (c,)
    monkeypatch.setenv("MAGRAY_TOOLS_ROOTS", f"{a}{os.pathsep}{b}")
    assert Runtime(load_settings()).workspace_roots([]) == (a, b)
    assert Runtime(load_settings()).workspace_roots([c]) == (c,)
    monkeypatch.setenv("MAGRAY_TOOLS_ROOTS", str(tmp_path / "missing"))
    with pytest.raises(
        UsageError, match=r"tools\.roots \(from MAGRAY_TOOLS_ROOTS\): .*missing is not a folder"
    ):
        Runtime(load_settings()).workspace_roots([])


def test_context_takes_timeout_and_private_hosts_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGRAY_TOOLS_TIMEOUT", "7.5")
    monkeypatch.setenv("MAGRAY_TOOLS_ALLOW_PRIVATE_HOSTS", "127.0.0.1, *.lan ,")
    ctx = Runtime(load_settings()).tool_context([tmp_path])
    assert ctx.timeout == 7.5
    assert ctx.allow_private_hosts == ("127.0.0.1", "*.lan")
    assert Runtime(load_settings()).tool_context([tmp_path], timeout=2).timeout == 2


def test_tools_run_uses_the_configured_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "hello.txt").write_text("hi from the configured root\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert RUNNER.invoke(app, ["config", "set", "tools.roots", str(ws)]).exit_code == 0
    result = RUNNER.invoke(app, ["tools", "run", "file_read", "-a", "path=hello.txt", "--json"])
    assert result.exit_code == 0, result.output
    assert "hi from the configured root" in json.loads(result.stdout)["output"]


def test_bad_configured_root_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_TOOLS_ROOTS", "/no/such/folder")
    result = RUNNER.invoke(app, ["tools", "run", "file_list"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: tools.roots (from MAGRAY_TOOLS_ROOTS): /no/such/folder is not a folder;"
        " name an existing folder."
    )


def test_a_commands_runtime_is_closed_when_the_command_ends() -> None:
    import sqlite3

    import click
    from click.testing import CliRunner as ClickRunner

    from magray.cli.context import runtime

    made: list[Runtime] = []

    @click.command()
    def probe() -> None:
        rt = runtime()
        made.append(rt)
        rt.conversations.recent(1)  # opens the conversation log

    assert ClickRunner().invoke(probe, []).exit_code == 0
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        made[0].conversations.recent(1)
