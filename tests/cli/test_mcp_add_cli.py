"""`mcp add` of a command that is not there: kept (it may be installed later), with a warning."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_errors_cli import run


def test_adding_a_command_that_does_not_exist_warns(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-server"
    added = run(["mcp", "add", "ghost", "--", str(missing)])
    assert added.exit_code == 0, added.output
    assert f"warning: {missing} was not found" in added.stderr
    assert "unreachable" in added.stderr
    on_path = run(["mcp", "add", "echoer", "--", "echo", "hi"])
    assert on_path.exit_code == 0 and "warning" not in on_path.stderr


def test_a_bare_name_that_is_not_on_path_warns() -> None:
    added = run(["mcp", "add", "nowhere", "--", "magray-no-such-program-xyz"])
    assert added.exit_code == 0, added.output
    assert "warning: magray-no-such-program-xyz was not found" in added.stderr


def test_mcp_call_json_prints_an_object_on_failure_like_tools_run(tmp_path: Path) -> None:
    run(["mcp", "add", "ghost", "--", str(tmp_path / "no-such-server")])
    for server in ("ghost", "nope"):
        result = run(["mcp", "call", server, "add", "--arg", "a=1", "--json"])
        assert result.exit_code in (1, 3), result.output
        failed = json.loads(result.stdout)
        assert failed == {
            "tool": f"mcp__{server}__add",
            "decision": None,
            "ok": False,
            "output": "",
            "data": None,
            "error": failed["error"],
            "exit_code": result.exit_code,
        }
        assert server in failed["error"]
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    shape = run(["tools", "run", "file_read", "--arg", "path=/etc/passwd", "--json"])
    assert set(json.loads(shape.stdout)) == set(failed)


def test_an_empty_program_or_a_url_without_a_host_is_refused() -> None:
    from tests.cli.test_errors_cli import fails

    fails(run(["mcp", "add", "blank", "--", ""]), 2, "the command to run is empty")
    fails(run(["mcp", "add", "blank", "--", "  ", "arg"]), 2, "the command to run is empty")
    fails(run(["mcp", "add", "web", "--url", "http://"]), 2, "names no host")
    fails(run(["mcp", "add", "web", "--url", "http://[::1"]), 2, "names no host")
    fails(run(["mcp", "add", "web"]), 2, "(neither was given); give one")
    both = run(["mcp", "add", "web", "--url", "http://h/mcp", "--", "srv"])
    fails(both, 2, "(both were given); give one")
    listed = run(["mcp", "list"])
    assert "blank" not in listed.stdout and "web" not in listed.stdout


def test_an_unknown_option_is_not_taken_for_the_command() -> None:
    """`mcp add x --command ls` stored a server whose command was `--command`."""
    from tests.cli.test_errors_cli import fails

    fails(run(["mcp", "add", "x", "--command", "ls"]), 2, "no such option --command", "-- npx")
    fails(run(["mcp", "add", "x", "--timout=5", "--", "ls"]), 2, "did you mean --timeout?")
    assert "no MCP servers configured" in run(["mcp", "list"]).stderr
    assert run(["mcp", "add", "x", "--timeout", "5", "--", "ls", "-l"]).exit_code == 0
