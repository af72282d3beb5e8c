"""Typed settings: one frozen section per [section], validated like the loader, read by code."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import OPTIONS, load_settings
from magray.config.sections import (
    SECTIONS,
    MemorySettings,
    SearchSettings,
    ToolsSettings,
    WebSettings,
)
from magray.errors import ConfigError
from magray.runtime import Runtime
from magray.tools.base import DEFAULT_TIMEOUT, ToolContext
from magray.tools.shell import ExecArgs, ShellExec

REPO = Path(__file__).resolve().parent.parent


def test_every_option_is_one_field_of_its_section_with_its_default() -> None:
    fields = {
        f"{name}.{f.name}": f.default
        for name, section in SECTIONS.items()
        for f in dataclasses.fields(section)
    }
    assert fields == {o.key: o.default for o in OPTIONS}


def test_sections_read_the_merged_values(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (magray_home / "config.toml").write_text("[memory]\nttl_interact_hours = 6\n")
    monkeypatch.setenv("MAGRAY_TOOLS_TIMEOUT", "12.5")
    settings = load_settings({"search.mode": "keyword"})
    assert settings.memory.ttl_interact_hours == 6.0
    assert isinstance(settings.memory.ttl_interact_hours, float)
    assert settings.tools.timeout == 12.5
    assert settings.search.mode == "keyword"
    assert settings.search.layer_weight("assets") == 1.0
    assert settings.memory is settings.memory  # made once per settings object
    moved = dataclasses.replace(settings, paths=settings.paths)
    assert moved.tools.timeout == 12.5
    assert settings.with_overrides({"tools.timeout": 3}).tools.timeout == 3.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ToolsSettings(timeout=0), "tools.timeout must be ≥ 0.1 (got 0.0)."),
        (
            lambda: ToolsSettings(sandbox="open"),
            "tools.sandbox must be one of read-only, workspace-write, full-access (got 'open').",
        ),
        (lambda: SearchSettings(rrf_k=float("nan")), "search.rrf_k must be a finite number"),
        (lambda: MemorySettings(search_ef="many"), "memory.search_ef must be a whole number"),
        (lambda: MemorySettings(auto_lifecycle="maybe"), "memory.auto_lifecycle must be true"),
        (lambda: WebSettings(search_url=3), "web.search_url must be text (got 3)."),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(make: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text


def test_a_section_made_by_hand_takes_the_defaults_it_is_not_given() -> None:
    tools = ToolsSettings(timeout=5, allow_private_hosts=" a.lan, ,127.0.0.1")
    assert tools.timeout == 5.0 and tools.sandbox == "workspace-write"
    assert tools.private_hosts == ("a.lan", "127.0.0.1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tools.timeout = 1  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"tools\.timeout must be ≥ 0\.1"):
        dataclasses.replace(tools, timeout=-1)


def test_the_tool_timeout_default_is_written_once() -> None:
    assert DEFAULT_TIMEOUT == ToolsSettings().timeout == load_settings().tools.timeout == 60.0
    assert ToolContext().timeout == DEFAULT_TIMEOUT


def test_a_tool_runs_under_the_timeout_its_context_was_given(
    tmp_path: Path, magray_home: Path
) -> None:
    (magray_home / "config.toml").write_text("[tools]\ntimeout = 600\n")
    given = load_settings({"tools.timeout": 1.5})
    ctx = Runtime(given).tool_context([tmp_path])
    assert ctx.timeout == 1.5 and ctx.settings is given
    args = ExecArgs(argv=[sys.executable, "-c", "import time; time.sleep(600)"])
    result = ShellExec().run(args, ctx)
    assert result.data["timed_out"]
    assert result.error == "timed out after 1.5 s; the process tree was killed."


def test_config_show_covers_every_section(magray_home: Path) -> None:
    (magray_home / "mcp.toml").write_text('[servers.notes]\ncommand = ["notes-server"]\n')
    (magray_home / "policy.toml").write_text(
        '[[rules]]\ntool = "shell_run"\naction = "deny"\ncommand = "rm"\n'
    )
    runner = CliRunner()
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    rows = {r["key"]: r for r in shown["settings"]}
    sections = {key.split(".")[0] for key in rows}
    assert sections == {*SECTIONS, "llm", "policy"}
    assert rows["mcp.servers"]["value"] == ["notes"]
    assert rows["mcp.servers"]["source"] == str(magray_home / "mcp.toml")
    assert rows["policy.rules"]["value"] == 1
    assert rows["policy.rules"]["source"] == str(magray_home / "policy.toml")
    assert rows["llm.providers"]["value"] == ["local"]
    assert shown["paths"]["mcp_file"] == str(magray_home / "mcp.toml")
    assert shown["paths"]["policy_file"] == str(magray_home / "policy.toml")
    text = runner.invoke(app, ["config", "show"], terminal_width=200).stdout
    for key in ("llm.default", "mcp.servers", "policy.rules", "tools.timeout", "server.auth"):
        assert key in text
    assert f"policy_file: {magray_home / 'policy.toml'}" in text
    got = runner.invoke(app, ["config", "get", "mcp.servers", "--json"])
    assert json.loads(got.stdout)["value"] == ["notes"]


def test_no_module_outside_the_loader_reads_settings_by_string_key() -> None:
    """Code reads typed sections; string keys belong to the loader and `magray config`."""
    out = subprocess.run(
        ["grep", "-rnE", r"get_(str|int|float|bool)\(|settings\[", str(REPO / "src" / "magray")],
        capture_output=True,
        text=True,
    ).stdout
    allowed = ("magray/config/settings.py", "magray/cli/config_cmd.py")
    offenders = [line for line in out.splitlines() if not line.split(":")[0].endswith(allowed)]
    assert offenders == []


def test_tools_and_the_task_graph_never_load_the_global_settings() -> None:
    out = subprocess.run(
        [
            "grep",
            "-rn",
            r"load_settings\|resolve_paths",
            str(REPO / "src" / "magray" / "tools"),
            str(REPO / "src" / "magray" / "tasks"),
        ],
        capture_output=True,
        text=True,
    ).stdout
    assert out == ""
