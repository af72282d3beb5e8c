"""Git tools in a real temporary repository."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.agent.executor import Executor
from magray.agent.plan import Plan, Step
from magray.errors import ToolError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext, ToolResult
from magray.tools.policy import Mode, Policy
from magray.tools.registry import default_registry

TOOLS = default_registry()


def call(ctx: ToolContext, name: str, /, **args: object) -> ToolResult:
    tool = TOOLS.get(name)
    return tool.run(tool.parse(args), ctx)


def test_edit_add_commit_appears_in_log(repo: Path, ctx: ToolContext) -> None:
    (repo / "hello.txt").write_text("changed\n", encoding="utf-8")
    assert "M hello.txt" in call(ctx, "git_status").output
    assert "+changed" in call(ctx, "git_diff").output
    call(ctx, "git_add", paths=["hello.txt"])
    assert "+changed" in call(ctx, "git_diff", staged=True).output
    assert call(ctx, "git_commit", message="Change hello").ok
    log = call(ctx, "git_log", max_count=5)
    assert [c["subject"] for c in log.data] == ["Change hello", "initial"]
    assert "Change hello" in call(ctx, "git_show").output


def test_branch_and_checkout(repo: Path, ctx: ToolContext) -> None:
    call(ctx, "git_branch", name="feature")
    assert "feature" in call(ctx, "git_branch").output
    call(ctx, "git_checkout", ref="feature")
    assert "## feature" in call(ctx, "git_status").output
    call(ctx, "git_checkout", ref="other", create=True)
    assert "## other" in call(ctx, "git_status").output


def test_option_injection_through_refs_is_refused(repo: Path, ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="not a valid git name"):
        call(ctx, "git_show", rev="--output=/tmp/x")


def test_outside_a_repository_is_a_clear_tool_error(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="not inside a git repository"):
        call(ctx, "git_status")


def test_failed_git_command_is_a_failed_result(repo: Path, ctx: ToolContext) -> None:
    result = call(ctx, "git_commit", message="nothing staged")
    assert not result.ok
    assert result.error and result.error.startswith("git failed")
    assert result.data["transient"] is False


def test_a_held_index_lock_is_transient_and_retried_once(
    repo: Path, ctx: ToolContext, tmp_path: Path
) -> None:
    (repo / "hello.txt").write_text("changed\n", encoding="utf-8")
    (repo / ".git" / "index.lock").write_text("", encoding="utf-8")
    result = call(ctx, "git_add", paths=["hello.txt"])
    assert not result.ok and "index.lock': File exists" in result.output
    assert result.data["transient"] is True
    audit = AuditLog(tmp_path / "audit.db")
    executor = Executor(TOOLS, ctx, Policy(mode=Mode(yes=True)), audit)
    (step,) = executor.run(Plan("stage", (Step("s", "git_add", {"paths": ["hello.txt"]}),)))
    assert (step.status, step.attempts) == ("failed", 2)
    assert [r.outcome for r in audit.rows()] == ["failed", "failed"]
