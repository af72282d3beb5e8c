"""Built-in deny rules through the CLI: .git is not written, destructive commands do not run,
under --yes too; only policy.toml switches a rule off.

Destructive commands are tried with ``--yes --dry-run``: a deny holds in a dry run too,
and a broken rule then only previews the command instead of running it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tools.clirun import audit_rows, run, tool


def test_writes_moves_and_deletes_under_git_are_denied_under_yes(
    workspace: Path, magray_home: Path
) -> None:
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n", encoding="utf-8")
    (workspace / "hook.sh").write_text("#!/bin/sh\ntouch pwned\n", encoding="utf-8")
    (workspace / "sub" / ".git").mkdir(parents=True)
    assert run(["policy", "allow", "file_*"]).exit_code == 0
    calls = [
        ("file_write", "path=.git/hooks/post-commit", "content=touch pwned"),
        ("file_write", "path=sub/.git/config", "content=[core]"),
        ("file_write", "path=.GIT/config", "content=[core]"),
        ("file_edit", "path=.git/config", "search=[core]", "replace=[core]\nfsmonitor=x"),
        ("file_move", "src=hook.sh", "dst=.git/hooks/post-commit"),
        ("file_move", "src=.git", "dst=old-git"),
        ("file_move", "src=sub", "dst=elsewhere"),  # a folder holding a .git
        ("file_delete", "path=.git/config"),
    ]
    for name, *args in calls:
        result = tool(workspace, name, *args, yes=True)
        assert result.exit_code == 4, (name, args, result.output)
        assert "built-in rule git-metadata" in result.stderr
    argv = json.dumps(["sh", "-c", "echo 'touch pwned' > post-commit"])
    result = tool(workspace, "shell_exec", f"argv={argv}", "cwd=.git/hooks", yes=True)
    assert result.exit_code == 4 and "built-in rule git-metadata" in result.stderr
    assert not (workspace / ".git" / "hooks" / "post-commit").exists()
    assert (workspace / ".git" / "config").read_text(encoding="utf-8") == "[core]\n"
    assert (workspace / "sub" / ".git").is_dir()
    assert {(r.decision, r.outcome) for r in audit_rows(magray_home)} == {("deny", "denied")}
    # reads of .git stay allowed, and writes elsewhere are not touched by the rule
    assert tool(workspace, "file_read", "path=.git/config").exit_code == 0
    assert tool(workspace, "file_write", "path=notes.txt", "content=x", yes=True).exit_code == 0


def test_a_named_exception_in_policy_toml_removes_the_git_rule(
    workspace: Path, magray_home: Path
) -> None:
    (workspace / ".git").mkdir()
    args = ("path=.git/description", "content=mine")
    assert tool(workspace, "file_write", *args, yes=True).exit_code == 4
    assert run(["policy", "remove", "git-metadata"]).exit_code == 1  # not by the CLI
    assert run(["policy", "allow", "file_read"]).exit_code == 0
    policy = magray_home / "policy.toml"
    policy.write_text(
        'builtin_exceptions = ["git-metadata"]\n' + policy.read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    assert tool(workspace, "file_write", *args, yes=True).exit_code == 0
    assert (workspace / ".git" / "description").read_text(encoding="utf-8") == "mine"
    # adding a rule keeps the exception
    assert run(["policy", "deny", "shell_exec"]).exit_code == 0
    assert "builtin_exceptions" in policy.read_text(encoding="utf-8")
    shown = json.loads(run(["policy", "show", "--json"]).stdout)
    enabled = {b["name"]: b["enabled"] for b in shown["builtin"]}
    assert enabled["git-metadata"] is False and enabled["fork-bomb"] is True
    policy.write_text('builtin_exceptions = ["no-such-rule"]\n', encoding="utf-8")
    result = tool(workspace, "file_read", "path=hello.txt")
    assert result.exit_code == 1 and "no built-in rule named no-such-rule" in result.stderr


DESTRUCTIVE = [
    ["rm", "-rf", "/"],
    ["rm", "-fr", "~"],
    ["rm", "-r", "--no-preserve-root", "/"],
    ["rm", "-v", "-R", "-f", "--", "/"],
    ["rm", "--recursive", "--force", "/*"],
    ["/bin/rm", "-rf", "$HOME"],
    ["rm", "-rf", "~/"],
    ["rm", "-rf", "."],
    ["rm", "-rf", "*"],
    ["rm", "-rf", ".."],
    ["sudo", "-n", "rm", "-rf", "/"],
    ["env", "A=1", "rm", "-rf", "/"],
    ["sh", "-c", "echo hi; rm -rf / --no-preserve-root"],
    ["bash", "-lc", "cd /tmp && rm -rf ~"],
    ["bash", "-c", ":(){ :|:& };:"],
    ["sh", "-c", "bomb() { bomb | bomb & }; bomb"],
    ["mkfs", "/dev/sda1"],
    ["mkfs.ext4", "-F", "/dev/sdb"],
    ["dd", "if=/dev/zero", "of=/dev/sda", "bs=1M"],
    ["chmod", "-R", "777", "/"],
    ["chown", "-R", "nobody:nogroup", "/"],
    ["chmod", "--recursive", "000", "~"],
    ["rm", "-rf", "//"],
    ["rm", "-rf", "/tmp/../"],
    ["timeout", "-s", "KILL", "5", "rm", "-rf", "/"],
    ["find", ".", "-exec", "rm", "-rf", "/", ";"],
    ["bash", "-c", "eval 'rm -rf /'"],
    ["bash", "-c", "function f { f | f & }; f"],
    ["sudo", "dd", "of=/dev/nvme0n1", "if=/dev/urandom"],
]


@pytest.mark.parametrize("argv", DESTRUCTIVE, ids=lambda a: " ".join(a))
def test_destructive_commands_are_denied_under_yes(
    argv: list[str], workspace: Path, magray_home: Path
) -> None:
    assert run(["policy", "allow", "shell_exec"]).exit_code == 0
    base = ["tools", "run", "shell_exec", "--root", str(workspace), "--yes", "--dry-run"]
    result = run([*base, "--arg", f"argv={json.dumps(argv)}"])
    assert result.exit_code == 4, result.output
    assert "built-in rule" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_deleting_the_workspace_itself_is_denied_and_nothing_runs(workspace: Path) -> None:
    argv = json.dumps(["rm", "-rf", str(workspace)])
    result = tool(workspace, "shell_exec", f"argv={argv}", yes=True)
    assert result.exit_code == 4 and "rm-recursive-root" in result.stderr
    assert (workspace / "hello.txt").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["rm", "-rf", "build"],
        ["rm", "-rf", "./build/*"],
        ["rm", "/tmp/x"],
        ["dd", "if=a", "of=/dev/null"],
        ["chmod", "-R", "u+w", "."],
        ["echo", "rm -rf /"],
        ["git", "status"],
        ["git", "rm", "-r", "--cached", "."],
        ["sh", "-c", "rm -rf build && echo done"],
    ],
    ids=lambda a: " ".join(a),
)
def test_ordinary_commands_are_not_caught(argv: list[str], workspace: Path) -> None:
    base = ["tools", "run", "shell_exec", "--root", str(workspace), "--yes", "--dry-run"]
    assert run([*base, "--arg", f"argv={json.dumps(argv)}"]).exit_code == 0


def test_policy_show_lists_the_builtin_rules(magray_home: Path) -> None:
    text = run(["policy", "show"])
    assert text.exit_code == 0
    for name in ("git-metadata", "rm-recursive-root", "mkfs", "dd-device", "fork-bomb"):
        assert f"[built-in {name}]" in text.stdout
    shown = json.loads(run(["policy", "show", "--json"]).stdout)
    assert {b["name"] for b in shown["builtin"]} >= {"git-metadata", "chmod-recursive-root"}
    assert all(b["builtin"] and b["action"] == "deny" and b["enabled"] for b in shown["builtin"])
