"""The permission policy and the audited invoke path: deny wins, modes, asks, audit rows."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from magray.errors import DeniedError, PolicyError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext
from magray.tools.invoke import invoke
from magray.tools.policy import (
    Action,
    Mode,
    Policy,
    check_host_glob,
    glob_to_regex,
    make_rule,
)
from magray.tools.policy_file import add_rule, load_rules, reset_rules
from magray.tools.registry import default_registry

TOOLS = default_registry()


def decide(policy: Policy, ctx: ToolContext, name: str, /, **args: Any) -> Action:
    tool = TOOLS.get(name)
    return policy.decide(tool, tool.parse(args), ctx).action


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.db")


def test_defaults(ctx: ToolContext) -> None:
    policy = Policy()
    assert decide(policy, ctx, "file_read", path="hello.txt") is Action.ALLOW
    assert decide(policy, ctx, "git_branch") is Action.ALLOW
    assert decide(policy, ctx, "git_branch", name="x") is Action.ASK
    assert decide(policy, ctx, "file_write", path="a", content="") is Action.ASK
    assert decide(policy, ctx, "shell_exec", argv=["ls"]) is Action.ASK
    assert decide(policy, ctx, "file_read", path="../x") is Action.DENY


def test_deny_always_wins(ctx: ToolContext) -> None:
    rules = (
        make_rule("file_*", Action.ALLOW),
        make_rule("file_write", Action.DENY, path="secrets/**"),
        make_rule("file_write", Action.ALLOW, path="secrets/**"),
    )
    policy = Policy(rules=rules)
    assert decide(policy, ctx, "file_write", path="secrets/a/key.pem", content="") is Action.DENY
    assert decide(policy, ctx, "file_write", path="notes.txt", content="") is Action.ALLOW


def test_command_prefix_rules(ctx: ToolContext) -> None:
    policy = Policy(rules=(make_rule("shell_exec", Action.ALLOW, command="git status"),))
    assert decide(policy, ctx, "shell_exec", argv=["git", "status", "-s"]) is Action.ALLOW
    assert decide(policy, ctx, "shell_exec", argv=["git", "push"]) is Action.ASK
    assert decide(policy, ctx, "shell_exec", argv=["git", "statusx"]) is Action.ASK


def test_allow_never_reaches_outside_the_roots(ctx: ToolContext) -> None:
    policy = Policy(rules=(make_rule("*", Action.ALLOW),))
    assert decide(policy, ctx, "file_read", path="/etc/passwd") is Action.DENY


def test_read_only_mode(ctx: ToolContext) -> None:
    policy = Policy(rules=(make_rule("*", Action.ALLOW),), mode=Mode(read_only=True))
    assert decide(policy, ctx, "file_write", path="a", content="") is Action.DENY
    assert decide(policy, ctx, "shell_exec", argv=["ls"]) is Action.DENY
    assert decide(policy, ctx, "file_read", path="hello.txt") is Action.ALLOW


def test_glob_to_regex() -> None:
    assert glob_to_regex("secrets/**").match("secrets/a/b")
    assert glob_to_regex("**/*.pem").match("a/b/c.pem")
    assert glob_to_regex("**/*.pem").match("c.pem")
    assert not glob_to_regex("*.txt").match("a/b.txt")


def test_rules_round_trip_through_policy_toml(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    add_rule(path, make_rule("shell_exec", Action.ALLOW, command="git status"))
    add_rule(path, make_rule("file_write", Action.DENY, path="secrets/**"))
    add_rule(path, make_rule("file_write", Action.DENY, path="secrets/**"))
    assert [r.describe() for r in load_rules(path)] == [
        "allow shell_exec command='git status'",
        "deny file_write path='secrets/**'",
    ]
    assert reset_rules(path)
    assert load_rules(path) == ()
    path.write_text("[[rules]]\ntool = 'x'\naction = 'maybe'\n", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"rules\[1\]\.action must be one of allow, ask, deny"):
        load_rules(path)
    with pytest.raises(PolicyError, match="not both"):
        make_rule("x", Action.DENY, path="a", command="b")


@pytest.mark.parametrize("command", ["", "  ", "git 'log"])
def test_an_empty_or_unclosed_command_prefix_says_what_to_give(command: str) -> None:
    with pytest.raises(PolicyError, match="empty or badly quoted; give the command's first words"):
        make_rule("shell_exec", Action.ALLOW, command=command)


@pytest.mark.parametrize(
    ("host", "needle"),
    [
        (
            "https://docs.python.org/3/",
            "is a URL, not a host; give just the host, e.g. docs.python.org",
        ),
        ("docs.python.org/3", "holds a space, '/' or '@'"),
        ("exa mple.com", "holds a space"),
        ("ann@example.com", "'@'"),
        ("localhost:8080", "names a port; rules match the host alone, so give localhost"),
        ("[::1]", "give it without them: ::1"),
    ],
)
def test_a_host_rule_that_could_never_match_is_refused(host: str, needle: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(needle)):
        check_host_glob(make_rule("web_fetch", Action.ALLOW, host=host).host or "")


def test_host_rules_that_can_match_are_kept_lower_case() -> None:
    for host, kept in (("*.Example.COM", "*.example.com"), ("::1", "::1"), (" a.b ", "a.b")):
        rule = make_rule("web_fetch", Action.ALLOW, host=host)
        check_host_glob(rule.host or "")
        assert rule.host == kept


def test_a_stored_host_rule_that_cannot_match_is_refused_when_added_but_still_loads(
    tmp_path: Path,
) -> None:
    from tests.cli.test_errors_cli import fails, run

    fails(run(["policy", "allow", "web_fetch", "--host", "https://a.example/x"]), 1, "a.example")
    (tmp_path / "magray-home" / "policy.toml").write_text(
        "[[rules]]\ntool = 'web_fetch'\naction = 'deny'\nhost = 'exa mple.com'\n"
    )
    assert run(["policy", "show"]).exit_code == 0  # so that it can be removed
    assert run(["policy", "remove", "web_fetch", "--host", "exa mple.com"]).exit_code == 0


def test_non_interactive_ask_is_a_denial_and_audited(ctx: ToolContext, audit: AuditLog) -> None:
    with pytest.raises(DeniedError, match="nobody can be asked"):
        invoke(TOOLS.get("file_write"), {"path": "a.txt", "content": "x"}, ctx, Policy(), audit)
    [row] = audit.rows()
    assert (row.tool, row.decision, row.outcome) == ("file_write", "deny", "denied")
    assert len(row.args_sha256) == 64


def test_confirm_answers_asks(ctx: ToolContext, audit: AuditLog, workspace: Path) -> None:
    seen: list[str] = []

    def yes(name: str, preview: str) -> bool:
        seen.append(preview)
        return True

    args = {"path": "a.txt", "content": "x\n"}
    done = invoke(TOOLS.get("file_write"), args, ctx, Policy(), audit, confirm=yes)
    assert done.decision == "allow" and "+x" in seen[0]
    assert (workspace / "a.txt").read_text() == "x\n"
    with pytest.raises(DeniedError, match="refused by the user"):
        invoke(TOOLS.get("file_delete"), {"path": "a.txt"}, ctx, Policy(), audit, lambda *_: False)
    assert [r.outcome for r in audit.rows()] == ["ok", "denied"]


def test_dry_run_shows_a_diff_and_changes_nothing(
    ctx: ToolContext, audit: AuditLog, workspace: Path
) -> None:
    args = {"path": "hello.txt", "search": "two", "replace": "2"}
    done = invoke(TOOLS.get("file_edit"), args, ctx, Policy(mode=Mode(dry_run=True)), audit)
    assert done.dry_run and "-two\n+2" in done.result.output
    assert (workspace / "hello.txt").read_text() == "one\ntwo\nthree\n"
    assert audit.rows()[-1].outcome == "dry_run"


def test_escapes_are_denied_and_audited(
    ctx: ToolContext, audit: AuditLog, workspace: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_text("x", encoding="utf-8")
    (workspace / "link").symlink_to(tmp_path / "outside.txt")
    policy = Policy(mode=Mode(yes=True))
    for path in ("../outside.txt", str(tmp_path / "outside.txt"), "link"):
        with pytest.raises(DeniedError, match="outside the workspace roots"):
            invoke(TOOLS.get("file_read"), {"path": path}, ctx, policy, audit)
    assert [(r.decision, r.outcome) for r in audit.rows()] == [("deny", "denied")] * 3


def test_tool_errors_are_audited(ctx: ToolContext, audit: AuditLog) -> None:
    from magray.errors import ToolError

    with pytest.raises(ToolError):
        invoke(TOOLS.get("file_read"), {"path": "missing"}, ctx, Policy(), audit)
    row = audit.rows()[-1]
    assert (row.decision, row.outcome) == ("allow", "error")
    assert "does not exist" in row.detail
