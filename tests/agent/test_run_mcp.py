"""The agent and `magray tools` use the tools of a real MCP server process, under the policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app

from .conftest import Scripted, oa_plan, oa_verdict, openai_config, step

pytest.importorskip("mcp")

RUNNER = CliRunner()


def cli(args: Sequence[str]) -> Result:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def sum_plan() -> object:
    return oa_plan(
        step("add", "mcp__demo__add", {"a": 2, "b": 3}, why="add the numbers"),
        step(
            "save",
            "file_write",
            {"path": "sum.txt", "content": "{{steps.add.output}}\n"},
            "add",
        ),
    )


def test_agent_calls_mcp_tool_and_uses_its_output(
    mcp_demo: None, server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(sum_plan(), oa_verdict(True, "2 + 3 = 5, saved in sum.txt."))
    result = cli(["run", "add 2 and 3, save it", "--yes", "--root", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(s["tool"], s["status"]) for s in out["steps"]] == [
        ("mcp__demo__add", "ok"),
        ("file_write", "ok"),
    ]
    assert out["steps"][0]["output"] == "5"
    assert (repo / "sum.txt").read_text() == "5\n"
    # the planner was offered the MCP tools next to the built-ins
    system = server.requests[0]["messages"][0]["content"]
    assert "mcp__demo__add" in system and "file_write" in system


def test_mcp_tools_ask_by_default_so_a_noninteractive_run_is_denied(
    mcp_demo: None, server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(sum_plan())
    result = cli(["run", "add 2 and 3", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 4
    out = json.loads(result.stdout)
    assert [s["status"] for s in out["steps"]] == ["denied", "skipped"]
    assert "mcp__demo__add needs approval" in out["steps"][0]["error"]
    assert not (repo / "sum.txt").exists()
    rows = json.loads(cli(["tools", "audit", "--json"]).stdout)
    assert [(r["tool"], r["decision"]) for r in rows] == [("mcp__demo__add", "deny")]


def test_policy_rule_allows_an_mcp_tool_and_deny_wins(
    mcp_demo: None, server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    assert cli(["policy", "allow", "mcp__demo__*"]).exit_code == 0
    one = oa_plan(step("add", "mcp__demo__add", {"a": 20, "b": 22}))
    server.add(one, oa_verdict(True, "42"))
    result = cli(["run", "add 20 and 22", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"][0]["decision"] == "allow"

    assert cli(["policy", "deny", "mcp__demo__add"]).exit_code == 0
    server.add(one)
    result = cli(["run", "add 20 and 22", "--yes", "--root", str(repo), "--no-memory"])
    assert result.exit_code == 4
    assert "policy rule: deny mcp__demo__add" in result.stderr


def test_no_mcp_leaves_the_servers_out(
    mcp_demo: None, server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(oa_plan(step("add", "mcp__demo__add", {"a": 1, "b": 1})))
    server.add(oa_plan(step("add", "mcp__demo__add", {"a": 1, "b": 1})))
    server.add(oa_plan(step("add", "mcp__demo__add", {"a": 1, "b": 1})))
    result = cli(["run", "add", "--yes", "--root", str(repo), "--no-mcp", "--no-memory"])
    assert result.exit_code == 6  # the plan stayed invalid
    assert "unknown tool 'mcp__demo__add'" in result.stderr
    assert "mcp__demo__add" not in server.requests[0]["messages"][0]["content"]


def test_tools_cli_lists_and_runs_mcp_tools(mcp_demo: None, tmp_path: Path) -> None:
    listed = json.loads(cli(["tools", "list", "--json"]).stdout)
    by_name = {t["name"]: t for t in listed}
    assert by_name["mcp__demo__add"]["risk"] == "exec"
    assert by_name["mcp__demo__add"]["schema"]["required"] == ["a", "b"]
    assert "file_read" in by_name
    bare = json.loads(cli(["tools", "list", "--json", "--no-mcp"]).stdout)
    assert not any(t["name"].startswith("mcp__") for t in bare)

    base = ["tools", "run", "mcp__demo__echo", "--root", str(tmp_path), "-a", "text=hello"]
    denied = cli(base)
    assert denied.exit_code == 4 and "needs approval" in denied.stderr
    done = cli([*base, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["output"] == "hello"

    ghost = cli(["tools", "run", "mcp__ghost__echo", "--root", str(tmp_path)])
    assert ghost.exit_code == 3 and "no MCP server named 'ghost'" in ghost.stderr


def test_mcp_enabled_false_hides_the_servers(mcp_demo: None, magray_home: Path) -> None:
    assert cli(["config", "set", "mcp.enabled", "false"]).exit_code == 0
    listed = json.loads(cli(["tools", "list", "--json"]).stdout)
    assert not any(t["name"].startswith("mcp__") for t in listed)
