"""`magray tools` and `magray policy` through the CLI runner (exit 4 on denial)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.paths import resolve_paths
from magray.tools.audit import AuditLog
from tests.conftest import REPO

RUNNER = CliRunner()


def run(args: Sequence[str]) -> Result:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_tools_list_json() -> None:
    result = run(["tools", "list", "--json"])
    assert result.exit_code == 0
    tools = {t["name"]: t for t in json.loads(result.stdout)}
    assert {"file_read", "file_edit", "git_commit", "shell_exec"} <= set(tools)
    assert tools["file_edit"]["risk"] == "write"
    assert tools["file_edit"]["schema"]["required"] == ["path", "search", "replace"]
    assert tools["shell_exec"]["schema"]["properties"]["argv"]["type"] == "array"


def test_run_read_allowed_by_default(workspace: Path) -> None:
    result = run(["tools", "run", "file_read", "--root", str(workspace), "--arg", "path=hello.txt"])
    assert result.exit_code == 0
    assert result.stdout == "one\ntwo\nthree\n"


def test_non_interactive_ask_exits_4(workspace: Path, magray_home: Path) -> None:
    args = ["tools", "run", "file_write", "--root", str(workspace)]
    result = run([*args, "-a", "path=a.txt", "-a", "content=x"])
    assert result.exit_code == 4
    assert "nobody can be asked" in result.stderr
    assert not (workspace / "a.txt").exists()
    rows = AuditLog(magray_home / "data" / "audit.db").rows()
    assert [(r.tool, r.outcome) for r in rows] == [("file_write", "denied")]


def test_yes_json_and_dry_run(workspace: Path) -> None:
    base = ["tools", "run", "shell_exec", "--root", str(workspace), "--json"]
    result = run([*base, "--yes", "-a", 'argv=["echo", "a; rm -rf /"]'])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["output"] == "a; rm -rf /\n" and payload["decision"] == "allow"
    dry = run([*base, "--dry-run", "-a", 'argv=["touch", "x"]'])
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    assert not (workspace / "x").exists()


def test_read_only_denies_with_exit_4(workspace: Path) -> None:
    args = ["tools", "run", "file_delete", "--root", str(workspace), "--read-only", "--yes"]
    result = run([*args, "-a", "path=hello.txt"])
    assert result.exit_code == 4
    assert (workspace / "hello.txt").exists()


def test_policy_allow_deny_show_reset(workspace: Path) -> None:
    assert run(["policy", "allow", "file_write"]).exit_code == 0
    assert run(["policy", "deny", "file_write", "--path", "secrets/**"]).exit_code == 0
    assert run(["policy", "allow", "shell_exec", "--command", "git status"]).exit_code == 0
    shown = json.loads(run(["policy", "show", "--json"]).stdout)
    assert shown["rules"][1] == {"tool": "file_write", "action": "deny", "path": "secrets/**"}
    write = ["tools", "run", "file_write", "--root", str(workspace), "-a", "content=x"]
    assert run([*write, "-a", "path=notes.txt"]).exit_code == 0
    denied = run([*write, "-a", "path=secrets/k.txt"])
    assert denied.exit_code == 4
    assert "deny file_write path='secrets/**'" in denied.stderr
    refused = run(["policy", "reset"])  # not a terminal: nothing to answer "are you sure"
    assert refused.exit_code == 2 and "add --yes to confirm" in refused.stderr
    assert len(json.loads(run(["policy", "show", "--json"]).stdout)["rules"]) == 3
    assert run(["policy", "reset", "--yes"]).exit_code == 0
    assert json.loads(run(["policy", "show", "--json"]).stdout)["rules"] == []


def test_bad_invocations(workspace: Path) -> None:
    assert run(["tools", "run", "nope"]).exit_code == 3
    bad = run(["tools", "run", "file_read", "--root", str(workspace), "-a", "nokey"])
    assert bad.exit_code == 2
    twice = ["-a", "path=hello.txt", "-a", "path=other.txt"]
    both = run(["tools", "run", "file_read", "--root", str(workspace), *twice])
    assert both.exit_code == 2 and both.stdout == ""
    assert "--arg path is given twice; give it once" in both.stderr
    outside = run(["tools", "run", "git_status", "--root", str(workspace)])
    assert outside.exit_code == 1 and "not inside a git repository" in outside.stderr


def test_audit_command_lists_calls(workspace: Path) -> None:
    run(["tools", "run", "file_read", "--root", str(workspace), "-a", "path=hello.txt"])
    run(["tools", "run", "file_read", "--root", str(workspace), "-a", "path=../x"])
    rows = json.loads(run(["tools", "audit", "--json"]).stdout)
    assert [(r["tool"], r["decision"], r["outcome"]) for r in rows] == [
        ("file_read", "allow", "ok"),
        ("file_read", "deny", "denied"),
    ]
    assert "args_sha256" in rows[0] and rows[0]["time"].endswith("Z")


def test_real_subprocess_without_a_tty_exits_4(workspace: Path) -> None:
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "magray", "tools", "run", "shell_exec", "--root", str(workspace)]
    done = subprocess.run(
        [*cmd, "-a", 'argv=["touch", "pwned"]'],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
    )
    assert done.returncode == 4, done.stderr
    assert done.stderr.startswith("error: denied: shell_exec")
    assert not (workspace / "pwned").exists()


def test_arg_values_json_unless_the_field_is_text() -> None:
    from magray.cli.tools import parse_args
    from magray.tools.registry import default_registry

    schema = default_registry().get("file_edit").schema()
    assert parse_args(["path=a", "replace=2", "search=null"], schema) == {
        "path": "a",
        "replace": "2",
        "search": "null",
    }
    read = default_registry().get("file_read").schema()
    assert parse_args(["start_line=2", 'path="x"'], read) == {"start_line": 2, "path": "x"}
    assert parse_args(['argv=["a", "b"]', "n=x y"]) == {"argv": ["a", "b"], "n": "x y"}


def test_docs_python_example_runs(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (REPO / "docs" / "tools.md").read_text(encoding="utf-8")
    snippets = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(snippets) == 2
    monkeypatch.chdir(workspace)
    for snippet in snippets:
        exec(compile(snippet, "docs/tools.md", "exec"), {})
    assert (workspace / "audit.db").exists()
    assert AuditLog(resolve_paths().audit_db).rows()[-1].tool == "task_list"


def test_json_errors_still_print_an_object(workspace: Path) -> None:
    denied = run(
        ["tools", "run", "file_read", "--root", str(workspace), "-a", "path=../x", "--json"]
    )
    assert denied.exit_code == 4
    out = json.loads(denied.stdout)
    assert out["ok"] is False and out["decision"] == "deny" and out["exit_code"] == 4
    assert "outside the workspace roots" in out["error"]
    assert denied.stderr.startswith("error: ")
    missing = run(
        ["tools", "run", "file_read", "--root", str(workspace), "-a", "path=nope", "--json"]
    )
    out = json.loads(missing.stdout)
    assert missing.exit_code == out["exit_code"] != 0 and out["decision"] is None


def test_policy_refuses_rules_that_could_never_match() -> None:
    typo = run(["policy", "deny", "file_edti"])
    assert typo.exit_code == 1 and "no tool named 'file_edti'" in typo.stderr
    assert (
        "--command applies to shell_exec"
        in run(["policy", "allow", "file_write", "--command", "git"]).stderr
    )
    assert "reaches no host" in run(["policy", "allow", "file_write", "--host", "x.org"]).stderr
    assert "takes no path" in run(["policy", "deny", "git_log", "--path", "a/**"]).stderr
    assert run(["policy", "deny", "git_*"]).exit_code == 0  # globs and MCP names as they are
    assert run(["policy", "allow", "mcp__demo__add"]).exit_code == 0
    again = run(["policy", "deny", "git_*"])
    assert again.exit_code == 0 and "already there" in again.stderr
    rules = json.loads(run(["policy", "show", "--json"]).stdout)["rules"]
    assert [r["tool"] for r in rules] == ["git_*", "mcp__demo__add"]


def test_policy_remove_one_rule() -> None:
    assert run(["policy", "allow", "shell_exec", "--command", "git status"]).exit_code == 0
    assert run(["policy", "deny", "file_write", "--path", "secrets/**"]).exit_code == 0
    gone = run(["policy", "remove", "shell_exec", "--command", "git status"])
    assert gone.exit_code == 0 and "removed: allow shell_exec" in gone.stderr
    rules = json.loads(run(["policy", "show", "--json"]).stdout)["rules"]
    assert [(r["tool"], r["action"]) for r in rules] == [("file_write", "deny")]
    missing = run(["policy", "remove", "shell_exec"])
    assert missing.exit_code == 3 and "no rule for 'shell_exec'" in missing.stderr


def test_policy_reset_repairs_a_damaged_file() -> None:
    policy = resolve_paths().config_dir / "policy.toml"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_bytes(b"\x9a\xff not toml")
    refused = run(["policy", "reset"])
    assert refused.exit_code == 2 and "the damaged" in refused.stderr and policy.exists()
    assert run(["policy", "reset", "--yes"]).exit_code == 0
    assert not policy.exists()
    assert run(["policy", "show", "--json"]).exit_code == 0
