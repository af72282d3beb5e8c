"""`mcp add` of a command that is not there: kept (it may be installed later), with a warning."""

from __future__ import annotations

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
