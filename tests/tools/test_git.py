"""Git tools in a real temporary repository."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.agent.executor import Executor
from magray.agent.plan import Plan, Step
from magray.cli.main import app
from magray.errors import ToolError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext, ToolResult
from magray.tools.policy import Mode, Policy
from magray.tools.registry import default_registry
from tests.tools.conftest import git

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


# --- git cannot run code, stays inside the roots, and respects deny path rules -------------

RUNNER = CliRunner()
MODES = ("workspace-write", "full-access")  # full-access: only git's own overrides protect


def cli(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    result = RUNNER.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def git_tool(root: Path, name: str, *args: str, mode: str = "workspace-write") -> Result:
    argv = ["tools", "run", name, "--root", str(root), "--yes"]
    for arg in args:
        argv += ["-a", arg]
    return cli(argv, env={"MAGRAY_TOOLS_SANDBOX": mode})


def _marker_script(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A script that touches a marker file (outside the repository) and prints nothing."""
    marker = tmp_path / f"{name}.ran"
    script = tmp_path / f"{name}.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n", encoding="utf-8")
    script.chmod(0o755)
    return script, marker


@pytest.mark.parametrize("mode", MODES)
def test_configured_programs_never_run(repo: Path, tmp_path: Path, mode: str) -> None:
    fsmonitor, fs_ran = _marker_script(tmp_path, "fsmonitor")
    external, ext_ran = _marker_script(tmp_path, "external")
    textconv, conv_ran = _marker_script(tmp_path, "textconv")
    clean, clean_ran = _marker_script(tmp_path, "clean")
    pager, pager_ran = _marker_script(tmp_path, "pager")
    git(repo, "config", "core.fsmonitor", str(fsmonitor))
    git(repo, "config", "diff.external", str(external))
    git(repo, "config", "diff.evil.textconv", str(textconv))
    git(repo, "config", "filter.evil.clean", str(clean))
    git(repo, "config", "filter.evil.required", "true")
    git(repo, "config", "core.pager", str(pager))
    (repo / ".gitattributes").write_text("*.txt diff=evil filter=evil\n", encoding="utf-8")
    (repo / "hello.txt").write_text("changed\n", encoding="utf-8")
    assert git_tool(repo, "git_status", mode=mode).exit_code == 0
    diff = git_tool(repo, "git_diff", mode=mode)
    assert diff.exit_code == 0 and "+changed" in diff.stdout
    assert git_tool(repo, "git_add", 'paths=["hello.txt"]', mode=mode).exit_code == 0
    assert git_tool(repo, "git_commit", "message=Change", mode=mode).exit_code == 0
    assert "+changed" in git_tool(repo, "git_show", mode=mode).stdout
    assert git_tool(repo, "git_log", "patch=true", mode=mode).exit_code == 0
    for ran in (fs_ran, ext_ran, conv_ran, clean_ran, pager_ran):
        assert not ran.exists(), f"{ran.name}: git ran a configured program"


@pytest.mark.parametrize("mode", MODES)
def test_git_commit_runs_no_hook(repo: Path, tmp_path: Path, mode: str) -> None:
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    markers = []
    for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout"):
        script, marker = _marker_script(tmp_path, hook)
        (hooks / hook).write_bytes(script.read_bytes())
        (hooks / hook).chmod(0o755)
        markers.append(marker)
    (repo / "hello.txt").write_text("changed\n", encoding="utf-8")
    assert git_tool(repo, "git_add", 'paths=["."]', mode=mode).exit_code == 0
    committed = git_tool(repo, "git_commit", "message=No hooks", mode=mode)
    assert committed.exit_code == 0, committed.stderr
    assert git_tool(repo, "git_checkout", "ref=side", "create=true", mode=mode).exit_code == 0
    assert [m.name for m in markers if m.exists()] == []
    assert git(repo, "log", "-1", "--format=%s").strip() == "No hooks"


def test_commit_identity_comes_from_the_global_config(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Global Person\n\temail = global@example.com\n", encoding="utf-8"
    )
    monkeypatch.setenv("HOME", str(home))
    git(workspace, "init", "-q", "-b", "main")
    assert git_tool(workspace, "git_add", 'paths=["."]').exit_code == 0
    assert git_tool(workspace, "git_commit", "message=first").exit_code == 0
    assert git(workspace, "log", "-1", "--format=%an <%ae>").strip() == (
        "Global Person <global@example.com>"
    )


@pytest.fixture
def inner(tmp_path: Path) -> Path:
    """``outer/ws``: a workspace inside a bigger repository with a secret and a branch."""
    outer = tmp_path / "outer"
    ws = outer / "ws"
    ws.mkdir(parents=True)
    (outer / "outer_secret.txt").write_text("outer secret\n", encoding="utf-8")
    (ws / "a.txt").write_text("a\n", encoding="utf-8")
    git(outer, "init", "-q", "-b", "main")
    git(outer, "-c", "user.name=T", "-c", "user.email=t@x", "add", ".")
    git(outer, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qm", "initial")
    git(outer, "branch", "other")
    git(outer, "checkout", "-q", "other")
    (outer / "outer_secret.txt").write_text("rewritten\n", encoding="utf-8")
    git(outer, "-c", "user.name=T", "-c", "user.email=t@x", "commit", "-qam", "other")
    git(outer, "checkout", "-q", "main")
    (outer / "outer_secret.txt").write_text("outer change\n", encoding="utf-8")
    return ws


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("git_show", ["rev=HEAD:outer_secret.txt"]),
        ("git_diff", []),
        ("git_status", []),
        ("git_checkout", ["ref=other"]),
    ],
)
def test_a_root_inside_a_bigger_repository_is_refused(
    inner: Path, name: str, args: list[str]
) -> None:
    result = git_tool(inner, name, *args)
    assert result.exit_code == 4
    assert "larger than the workspace roots" in result.stderr
    assert f"--root {inner.parent}" in " ".join(result.stderr.split())
    assert "outer" not in result.stdout
    secret = inner.parent / "outer_secret.txt"
    assert secret.read_text(encoding="utf-8") == "outer change\n"
    assert git(inner.parent, "branch", "--show-current").strip() == "main"


def test_the_bigger_repository_works_when_it_is_a_root(inner: Path) -> None:
    result = git_tool(inner.parent, "git_show", "rev=HEAD:outer_secret.txt")
    assert result.exit_code == 0 and result.stdout == "outer secret\n"


@pytest.fixture
def secret_repo(repo: Path) -> Path:
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.txt").write_text("TOPSECRET\n", encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "add key")
    (repo / "secrets" / "key.txt").write_text("TOPSECRET2\n", encoding="utf-8")
    (repo / "hello.txt").write_text("visible change\n", encoding="utf-8")
    assert cli(["policy", "deny", "*", "--path", "secrets/**"]).exit_code == 0
    return repo


@pytest.mark.parametrize(
    "rev", ["HEAD:secrets/key.txt", "HEAD:secrets", "HEAD:./secrets/key.txt", ":0:secrets/key.txt"]
)
def test_git_show_refuses_a_denied_path(secret_repo: Path, rev: str) -> None:
    result = git_tool(secret_repo, "git_show", f"rev={rev}")
    assert result.exit_code == 4
    assert "deny path rule" in result.stderr
    assert "TOPSECRET" not in result.stdout


def test_git_show_refuses_a_file_by_hash(secret_repo: Path) -> None:
    blob = git(secret_repo, "rev-parse", "HEAD:secrets/key.txt").strip()
    result = git_tool(secret_repo, "git_show", f"rev={blob}")
    assert result.exit_code == 1 and "by path only" in result.stderr
    assert "TOPSECRET" not in result.stdout


@pytest.mark.parametrize(
    ("name", "args", "visible"),
    [
        ("git_show", ["rev=HEAD"], "add key"),
        ("git_diff", [], "+visible change"),
        ("git_log", ["patch=true"], "+def f():"),
        ("git_status", [], "hello.txt"),
    ],
)
def test_denied_paths_are_left_out(
    secret_repo: Path, name: str, args: list[str], visible: str
) -> None:
    result = git_tool(secret_repo, name, *args)
    assert result.exit_code == 0, result.stderr
    assert visible in result.stdout
    assert "TOPSECRET" not in result.stdout and "secrets/key.txt" not in result.stdout


def test_git_add_skips_denied_paths_and_checkout_refuses_to_rewrite_them(
    secret_repo: Path,
) -> None:
    assert git_tool(secret_repo, "git_add", 'paths=["."]').exit_code == 0
    staged = git(secret_repo, "diff", "--cached", "--name-only").split()
    assert staged == ["hello.txt"]
    git(secret_repo, "stash", "-q")
    git(secret_repo, "branch", "old", "HEAD~1")
    result = git_tool(secret_repo, "git_checkout", "ref=old")
    assert result.exit_code == 4 and "deny path rule" in result.stderr
    assert (secret_repo / "secrets" / "key.txt").read_text(encoding="utf-8") == "TOPSECRET\n"


def test_core_worktree_outside_the_roots_is_refused(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    git(repo, "config", "core.worktree", str(elsewhere))
    result = git_tool(repo, "git_checkout", "ref=main")
    assert result.exit_code == 4 and "larger than the workspace roots" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_a_linked_worktree_writes_only_when_its_git_folder_is_a_root(
    repo: Path, tmp_path: Path
) -> None:
    """The worktree's git folder lies outside the root: reads work, writes need a --root."""
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    (linked / "hello.txt").write_text("from the worktree\n", encoding="utf-8")
    assert "M hello.txt" in git_tool(linked, "git_status").stdout
    refused = git_tool(linked, "git_add", 'paths=["hello.txt"]')
    assert refused.exit_code == 4
    assert f"--root {repo / '.git'}" in " ".join(refused.stderr.split())
    both = ["tools", "run", "--root", str(linked), "--root", str(repo / ".git"), "--yes"]
    assert cli([*both[:2], "git_add", *both[2:], "-a", 'paths=["hello.txt"]']).exit_code == 0
    committed = cli([*both[:2], "git_commit", *both[2:], "-a", "message=In the worktree"])
    assert committed.exit_code == 0, committed.stderr
    assert git(repo, "log", "-1", "--format=%s", "side").strip() == "In the worktree"


def test_a_git_file_pointing_elsewhere_cannot_be_written_through(
    workspace: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    (workspace / ".git").write_text(f"gitdir: {other / '.git'}\n", encoding="utf-8")
    result = git_tool(workspace, "git_add", 'paths=["hello.txt"]')
    assert result.exit_code == 4 and "outside the workspace roots" in result.stderr
    assert git(other, "status", "--porcelain", "--untracked-files=no") == ""
    assert not (other / ".git" / "index").exists()
