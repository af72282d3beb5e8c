"""MCP: a real server written with the `mcp` SDK, configured by the CLI, called under policy."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.errors import DeniedError, NotFoundError, ToolError, UsageError
from magray.paths import resolve_paths
from magray.tools.audit import AuditLog
from magray.tools.base import Risk, ToolContext
from magray.tools.invoke import invoke
from magray.tools.mcp import (
    discover,
    get_server,
    load_servers,
    make_server,
    mcp_file,
    server_tools,
)
from magray.tools.policy import Mode, Policy
from magray.tools.registry import ToolRegistry

pytest.importorskip("mcp")

from tests.conftest import MCP_SERVER as SERVER

RUNNER = CliRunner()


def run(args: Sequence[str]) -> Result:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _config_dir() -> Path:
    return resolve_paths().config_dir


def _tool(name: str) -> object:
    registry = ToolRegistry()
    discover(registry, _config_dir())
    return registry.get(name)


def test_add_list_remove(mcp_demo: None) -> None:
    assert get_server(mcp_file(_config_dir()), "demo").command == (sys.executable, str(SERVER))
    result = run(["mcp", "list", "--json"])
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["name"] == "demo" and row["transport"] == "stdio" and row["ok"] is True
    tools = {t["name"]: t for t in row["tools"]}
    assert set(tools) == {"mcp__demo__add", "mcp__demo__echo", "mcp__demo__slow", "mcp__demo__fail"}
    assert tools["mcp__demo__add"]["risk"] == "exec"
    assert tools["mcp__demo__add"]["tool"] == "add"
    assert tools["mcp__demo__add"]["schema"]["required"] == ["a", "b"]

    again = run(["mcp", "add", "demo", "--", "true"])
    assert again.exit_code == 2 and "exists" in again.output

    result = run(["mcp", "remove", "demo"])
    assert result.exit_code == 0
    assert load_servers(mcp_file(_config_dir())) == {}
    gone = run(["mcp", "remove", "demo"])
    assert gone.exit_code == 3 and "no MCP server named 'demo'" in gone.output


def test_add_needs_command_or_url() -> None:
    assert run(["mcp", "add", "x"]).exit_code == 2
    assert run(["mcp", "add", "bad__name", "--", "true"]).exit_code == 2
    assert run(["mcp", "add", "x", "--url", "ftp://h/"]).exit_code == 2


def test_unreachable_server_is_listed_as_such(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-server"
    assert run(["mcp", "add", "ghost", "--", str(missing)]).exit_code == 0
    result = run(["mcp", "list", "--json", "--timeout", "5"])
    [row] = json.loads(result.stdout)
    assert row["ok"] is False and "ghost" in row["error"] and row["tools"] == []
    text = run(["mcp", "list"])
    assert "unreachable" in text.stdout


def test_unknown_server_is_a_clear_error() -> None:
    with pytest.raises(NotFoundError, match="no MCP server named 'nope'"):
        get_server(mcp_file(_config_dir()), "nope")


def test_discover_skips_a_broken_server(
    mcp_demo: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run(["mcp", "add", "broken", "--", str(tmp_path / "missing")])
    registry = ToolRegistry()
    added = discover(registry, _config_dir())
    assert {t.name for t in added} >= {"mcp__demo__add", "mcp__demo__echo"}
    assert "MCP server broken skipped" in caplog.text


def test_default_policy_asks_so_noninteractive_call_is_denied(
    mcp_demo: None, tmp_path: Path
) -> None:
    tool = _tool("mcp__demo__add")
    audit = AuditLog(tmp_path / "audit.db")
    ctx = ToolContext(roots=(tmp_path,), timeout=10)
    with pytest.raises(DeniedError, match="needs approval"):
        invoke(tool, {"a": 2, "b": 3}, ctx, Policy(), audit)  # type: ignore[arg-type]
    [row] = audit.rows()
    assert (row.tool, row.decision, row.outcome) == ("mcp__demo__add", "deny", "denied")


def test_call_with_yes_and_preview(mcp_demo: None, tmp_path: Path) -> None:
    tool = _tool("mcp__demo__add")
    audit = AuditLog(tmp_path / "audit.db")
    ctx = ToolContext(roots=(tmp_path,), timeout=10)
    done = invoke(tool, {"a": 2, "b": 3}, ctx, Policy(mode=Mode(yes=True)), audit)  # type: ignore[arg-type]
    assert done.result.ok and done.result.output == "5"
    assert done.decision == "allow"
    assert audit.rows()[0].outcome == "ok"

    dry = invoke(tool, {"a": 1, "b": 2}, ctx, Policy(mode=Mode(dry_run=True)), audit)  # type: ignore[arg-type]
    assert dry.result.output == (
        f'MCP server demo ({sys.executable} {SERVER}): add {{"a": 1, "b": 2}}'
    )
    with pytest.raises(
        UsageError, match=r"missing argument 'b'\); it takes a \(required\), b \(required\)"
    ):
        invoke(tool, {"a": 1}, ctx, Policy(mode=Mode(yes=True)), audit)  # type: ignore[arg-type]


def test_tool_errors_and_timeouts(mcp_demo: None, tmp_path: Path) -> None:
    """Only a call that cannot answer in time meets a short timeout, never a server start.

    Each call starts the server afresh; its start-up and handshake wait up to the server's
    own timeout (set far above any start-up here), and the tool timeout covers the call only.
    """
    server = dataclasses.replace(get_server(mcp_file(_config_dir()), "demo"), timeout=600.0)
    tools = {t.name: t for t in server_tools(server)}
    assert tools["mcp__demo__slow"].risk is Risk.EXEC
    patient = ToolContext(roots=(tmp_path,), timeout=600)
    failed = tools["mcp__demo__fail"].run(tools["mcp__demo__fail"].parse({}), patient)
    assert not failed.ok and "fail" in (failed.error or "")

    slow = tools["mcp__demo__slow"]
    hurried = ToolContext(roots=(tmp_path,), timeout=1)  # the tool sleeps 600 s: it never answers
    with pytest.raises(ToolError, match="did not answer within 1 s") as info:
        slow.run(slow.parse({"seconds": 600}), hurried)
    assert info.value.transient  # the executor tries a timed-out step once more


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def test_streamable_http_server(http_server: str, tmp_path: Path) -> None:
    assert run(["mcp", "add", "web", "--url", http_server]).exit_code == 0
    server = make_server("web", url=http_server, timeout=10)
    tools = {t.name: t for t in server_tools(server)}
    echo = tools["mcp__web__echo"]
    assert echo.risk is Risk.NETWORK
    ctx = ToolContext(roots=(tmp_path,), timeout=10)
    done = invoke(
        echo, {"text": "hi"}, ctx, Policy(mode=Mode(yes=True)), AuditLog(tmp_path / "a.db")
    )
    assert done.result.output == "hi"


def test_mcp_call_cli_under_policy(mcp_demo: None) -> None:
    denied = run(["mcp", "call", "demo", "add", "--arg", "a=2", "--arg", "b=3"])
    assert denied.exit_code == 4 and "needs approval" in denied.output
    done = run(["mcp", "call", "demo", "add", "--arg", "a=2", "--arg", "b=3", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["output"] == "5"
    missing = run(["mcp", "call", "demo", "nope"])
    assert missing.exit_code == 3 and "has no tool 'nope'" in missing.output
    assert run(["mcp", "call", "ghost", "add"]).exit_code == 3


def test_unreachable_http_server_is_transient_a_missing_command_is_not(tmp_path: Path) -> None:
    gone = make_server("gone", url=f"http://127.0.0.1:{_free_port()}/mcp", timeout=3)
    with pytest.raises(ToolError, match="listing tools failed") as info:
        server_tools(gone)
    assert info.value.transient
    missing = make_server("missing", command=[str(tmp_path / "no-such-server")], timeout=3)
    with pytest.raises(ToolError) as info:
        server_tools(missing)
    assert not info.value.transient
