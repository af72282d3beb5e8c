"""Git tools through the real ``git`` binary (argv, never a shell), in the workspace repository.

A failure because another git process holds a lock (``Unable to create '….lock': File
exists``) or a timeout is marked transient, so the agent's executor tries it once more.
"""

from __future__ import annotations

import re
import shlex
from abc import abstractmethod
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.paths import resolve_inside
from magray.tools.shell import run_argv

_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "PAGER": "cat", "LC_ALL": "C"}
_LOG_FORMAT = "--format=%h%x1f%ad%x1f%an%x1f%s"
#: git's words when another process holds index.lock, HEAD.lock, a ref's lock, …
_LOCK_HELD = re.compile(r"Unable to create '[^']*\.lock': File exists")


def _ref(value: str, what: str) -> str:
    """A revision or branch name that cannot be mistaken for an option."""
    if not value or value.startswith("-") or any(c.isspace() or c == "\0" for c in value):
        raise ToolError(f"{what} {value!r} is not a valid git name (no leading '-', no spaces).")
    return value


class GitTool(Tool[Any]):
    """Shared plumbing: the repository check and running ``git`` with a clean environment."""

    @abstractmethod
    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        """The git arguments (after ``git``) for ``args``."""

    def git(self, argv: list[str], ctx: ToolContext) -> tuple[bool, str, Any]:
        root = ctx.workspace
        check = run_argv(["git", "rev-parse", "--is-inside-work-tree"], root, ctx, _GIT_ENV)
        if check.returncode != 0 or check.output.strip() != "true":
            raise ToolError(
                f"{root} is not inside a git repository; run `git init` there or pass --root."
            )
        done = run_argv(["git", *argv], root, ctx, _GIT_ENV)
        if done.timed_out:
            raise ToolError(f"git {argv[0]} timed out after {ctx.timeout:g} s.", transient=True)
        data: dict[str, Any] = {"exit_code": done.returncode}
        if done.returncode != 0:
            data["transient"] = _LOCK_HELD.search(done.output) is not None
        return done.returncode == 0, done.output, data

    def preview(self, args: Any, ctx: ToolContext) -> str:
        return shlex.join(["git", *self.argv(args, ctx)])

    @staticmethod
    def failure(output: str, data: Any) -> ToolResult:
        """A failed git call; the error is git's last line (``fatal: …``)."""
        last = output.strip().splitlines()[-1] if output.strip() else "no output"
        return ToolResult(ok=False, output=output, data=data, error=f"git failed: {last}")

    def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        ok, output, data = self.git(self.argv(args, ctx), ctx)
        if not ok:
            return self.failure(output, data)
        return ToolResult(ok=True, output=output, data=data)


def _paths(paths: list[str], ctx: ToolContext) -> list[str]:
    return [str(resolve_inside(p, ctx.roots)) for p in paths]


class NoArgs(ToolArgs):
    pass


class GitStatus(GitTool):
    name = "git_status"
    description = "Show the working tree status (short format, with the branch)."
    risk = Risk.READ
    Args = NoArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["status", "--short", "--branch"]


class DiffArgs(ToolArgs):
    staged: bool = Field(False, description="Show staged changes instead of unstaged ones.")
    paths: list[str] = Field(default_factory=list, description="Limit to these paths.")


class GitDiff(GitTool):
    name = "git_diff"
    description = "Show changes as a unified diff (unstaged, or staged with staged=true)."
    risk = Risk.READ
    Args = DiffArgs
    path_fields = ("paths",)

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        staged = ["--cached"] if args.staged else []
        return ["diff", "--no-color", *staged, "--", *_paths(args.paths, ctx)]


class LogArgs(ToolArgs):
    max_count: int = Field(20, ge=1, le=10_000, description="Most commits to show.")
    rev: str | None = Field(None, description="Start from this revision (default HEAD).")


class GitLog(GitTool):
    name = "git_log"
    description = "Show recent commits: short hash, date, author, subject."
    risk = Risk.READ
    Args = LogArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        rev = [_ref(args.rev, "revision")] if args.rev else []
        return ["log", f"--max-count={args.max_count}", "--date=short", _LOG_FORMAT, *rev, "--"]

    def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        ok, output, data = self.git(self.argv(args, ctx), ctx)
        if not ok:
            return self.failure(output, data)
        commits = []
        for line in output.splitlines():
            parts = line.split("\x1f")
            if len(parts) == 4:
                commits.append(dict(zip(("sha", "date", "author", "subject"), parts, strict=True)))
        text = "\n".join(f"{c['sha']} {c['date']} {c['author']}: {c['subject']}" for c in commits)
        return ToolResult(ok=True, output=text, data=commits)


class ShowArgs(ToolArgs):
    rev: str = Field("HEAD", description="Commit (or other object) to show.")


class GitShow(GitTool):
    name = "git_show"
    description = "Show a commit's message and diff."
    risk = Risk.READ
    Args = ShowArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["show", "--no-color", _ref(args.rev, "revision"), "--"]


class AddArgs(ToolArgs):
    paths: list[str] = Field(min_length=1, description="Paths to stage ('.' for everything).")


class GitAdd(GitTool):
    name = "git_add"
    description = "Stage files for the next commit."
    risk = Risk.WRITE
    Args = AddArgs
    path_fields = ("paths",)

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["add", "--", *_paths(args.paths, ctx)]


class CommitArgs(ToolArgs):
    message: str = Field(min_length=1, description="The commit message.")


class GitCommit(GitTool):
    name = "git_commit"
    description = "Commit the staged changes with a message."
    risk = Risk.WRITE
    Args = CommitArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["commit", "--no-verify", "-m", args.message]


class BranchArgs(ToolArgs):
    name: str | None = Field(None, description="Create this branch; omit to list branches.")


class GitBranch(GitTool):
    name = "git_branch"
    description = "List branches, or create one (without switching to it)."
    risk = Risk.WRITE
    Args = BranchArgs

    def risk_for(self, args: Any) -> Risk:
        return Risk.READ if args.name is None else Risk.WRITE

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        if args.name is None:
            return ["branch", "--list", "--no-color"]
        return ["branch", _ref(args.name, "branch name")]


class CheckoutArgs(ToolArgs):
    ref: str = Field(description="Branch or commit to switch to.")
    create: bool = Field(False, description="Create the branch first (git checkout -b).")


class GitCheckout(GitTool):
    name = "git_checkout"
    description = "Switch to a branch or commit (create=true makes a new branch)."
    risk = Risk.WRITE
    Args = CheckoutArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        ref = _ref(args.ref, "ref")
        return ["checkout", "-b", ref] if args.create else ["checkout", ref, "--"]


TOOLS: tuple[Tool[Any], ...] = (
    GitStatus(),
    GitDiff(),
    GitLog(),
    GitShow(),
    GitAdd(),
    GitCommit(),
    GitBranch(),
    GitCheckout(),
)
