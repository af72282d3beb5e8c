"""A ``git`` command run through shell_exec runs nothing the repository's config names.

A folder the agent wrote (``HEAD``, ``objects/``, ``refs/`` and a ``config``, or a
nested ``.git``) can name programs that ``git status`` or ``git diff`` would run: the
fsmonitor, hooks, filter and diff drivers. Real git, real bubblewrap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.tools.base import ToolContext
from magray.tools.git_safety import driver_overrides
from tests.tools.conftest import git
from tests.tools.test_sandbox import call


def script(folder: Path, marker: Path) -> Path:
    path = folder / "payload.sh"
    path.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_a_planted_bare_folder_runs_no_fsmonitor(workspace: Path, ctx: ToolContext) -> None:
    marker = workspace / "pwned"
    evil = workspace / "evil"
    for sub in ("objects", "refs/heads"):
        (evil / sub).mkdir(parents=True)
    (evil / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    payload = script(workspace, marker)
    (evil / "config").write_text(
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = ..\n"
        f"\tfsmonitor = {payload}\n",
        encoding="utf-8",
    )
    call(ctx, ["git", "status"], cwd="evil")
    call(ctx, ["git", "--git-dir=evil", "--work-tree=.", "status"])
    assert not marker.exists()


@pytest.mark.parametrize("driver", ["fsmonitor", "hooks", "filter", "textconv", "external"])
def test_a_planted_nested_repository_runs_nothing(
    workspace: Path, ctx: ToolContext, driver: str
) -> None:
    marker = workspace / "pwned"
    sub = workspace / "sub"
    sub.mkdir()
    git(sub, "init", "-q", "-b", "main")
    (sub / "a.txt").write_text("a\n", encoding="utf-8")
    (sub / ".gitattributes").write_text("*.txt filter=evil diff=evil\n", encoding="utf-8")
    git(sub, "add", ".")
    git(sub, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i", "--no-verify")
    (sub / "a.txt").write_text("b\n", encoding="utf-8")
    payload = str(script(workspace, marker))
    hooks = sub / "hooks"
    hooks.mkdir()
    (hooks / "post-index-change").symlink_to(payload)
    (hooks / "reference-transaction").symlink_to(payload)
    key, value = {
        "fsmonitor": ("core.fsmonitor", payload),
        "hooks": ("core.hooksPath", str(hooks)),
        "filter": ("filter.evil.clean", payload),
        "textconv": ("diff.evil.textconv", payload),
        "external": ("diff.external", payload),
    }[driver]
    git(sub, "config", key, value)
    for argv in (["git", "status"], ["git", "diff"], ["git", "add", "-A"], ["git", "log", "-p"]):
        call(ctx, argv, cwd="sub")
    call(ctx, ["git", "-C", "sub", "status"])
    assert not marker.exists()


def test_plain_git_commands_still_work(repo: Path, ctx: ToolContext) -> None:
    (repo / "hello.txt").write_text("changed\n", encoding="utf-8")
    status = call(ctx, ["git", "status", "--short"])
    assert status.ok and "hello.txt" in status.output
    diff = call(ctx, ["git", "diff"])
    assert diff.ok and "+changed" in diff.output


def test_only_the_repositorys_own_drivers_are_turned_off() -> None:
    listing = [
        "local\tfilter.lfs.clean git-lfs clean -- %f",
        "global\tdiff.img.textconv exiftool",
        "local\tremote.origin.uploadpack sh -c x",
        "local\tremote.origin.url /elsewhere",
        "worktree\tcore.sshcommand evil",
        "local\tdiff.external evil",
    ]
    assert driver_overrides(listing) == [
        "filter.lfs.clean=",
        "remote.origin.uploadpack=git-upload-pack",
        "core.sshcommand=ssh",
        "diff.external=",
    ]
