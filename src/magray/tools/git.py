"""Git tools through the real ``git`` binary (argv, never a shell), in the workspace repository.

Git cannot run code here: every call disables the programs a repository's config can
name (fsmonitor, hooks, pagers, editors, external diff and textconv, filter drivers,
credential helpers, transports, signing), reads no system or global config, and runs
in the OS sandbox (read tools see the roots read-only; write tools may write the roots
and the repository's git folders). The repository must lie inside the workspace roots:
a root inside a bigger repository is refused. Paths that deny rules cover are left out
of diffs, logs and status (``:(exclude)`` pathspecs), and ``git_show`` refuses them.

A failure because another git process holds a lock (``Unable to create '….lock': File
exists``) or a timeout is marked transient, so the agent's executor tries it once more.
"""

from __future__ import annotations

import re
import shlex
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import DeniedError, ToolError, see, server_setting
from magray.tools import sandbox
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.git_safety import (
    GIT_ENV,
    discovery,
    identity_env,
    no_programs,
    path_excludes,
    refused_path,
)
from magray.tools.paths import relative_to_roots, resolve_inside
from magray.tools.shell import Completed, run_argv

_LOG_FORMAT = "--format=%h%x1f%ad%x1f%an%x1f%s"
#: git's words when another process holds index.lock, HEAD.lock, a ref's lock, …
_LOCK_HELD = re.compile(r"Unable to create '[^']*\.lock': File exists")
#: diff-producing commands never run an external diff or a textconv filter
_NO_EXT = ("--no-ext-diff", "--no-textconv")


def _ref(value: str, what: str) -> str:
    """A revision or branch name that cannot be mistaken for an option."""
    if not value or value.startswith("-") or any(c.isspace() or c == "\0" for c in value):
        raise ToolError(f"{what} {value!r} is not a valid git name (no leading '-', no spaces).")
    return value


@dataclass(frozen=True, slots=True)
class Repo:
    """The repository of the workspace: its top folder and git folders, checked in the roots."""

    top: Path
    git_dirs: tuple[Path, ...]
    #: the ``filter.*`` lines of the repository's config (each driver is turned off)
    filters: tuple[str, ...]
    #: the top folder relative to the root holding it ("." when it is the root)
    prefix: str


class GitTool(Tool[Any]):
    """Shared plumbing: the repository check and running ``git`` so that it runs nothing else."""

    @abstractmethod
    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        """The git arguments (after ``git``) for ``args``."""

    def query(self, argv: list[str], ctx: ToolContext, filters: tuple[str, ...] = ()) -> Completed:
        """One of the tools' own ``git`` queries, with the safe environment, read-only."""
        env = {**GIT_ENV, "GIT_OPTIONAL_LOCKS": "0"}
        full = ["git", *no_programs(filters), *argv]
        return run_argv(full, ctx.workspace, ctx, env, discovery(ctx))

    def repo(self, ctx: ToolContext) -> Repo:
        """The workspace's repository; refused when it is larger than the roots."""
        root = ctx.workspace
        where = self.query(["rev-parse", "--show-toplevel", "--git-dir", "--git-common-dir"], ctx)
        lines = where.output.strip().splitlines()[-3:]
        if where.returncode != 0 or len(lines) != 3:
            said = (
                f" (git: {lines[-1]})" if lines and "not a git repository" not in lines[-1] else ""
            )
            raise ToolError(
                f"{root} is not inside a git repository{said}; run `git init` there or ",
                server_setting("pass --root", "add a repository's folder to tools.roots"),
                ".",
            )
        top = Path(lines[0]).resolve()
        try:
            resolve_inside(top, ctx.roots)
        except DeniedError:
            raise DeniedError(
                f"the git repository at {top} is larger than the workspace roots "
                f"({', '.join(str(r) for r in ctx.roots)}); ",
                server_setting(f"pass --root {top}", f"add {top} to tools.roots"),
                f" to let the git tools use it, or run `git init` in {root} for a repository"
                " of its own.",
            ) from None
        dirs = tuple(dict.fromkeys((root / line).resolve() for line in lines[1:]))
        listed = self.query(["config", "--get-regexp", r"^filter\."], ctx)
        drivers = listed.output.splitlines() if listed.returncode == 0 else []
        prefix = relative_to_roots(top, ctx.roots)
        return Repo(top, dirs, tuple(drivers), prefix)

    def confinement(self, repo: Repo, ctx: ToolContext, args: Any) -> sandbox.Confinement:
        """Read tools see the roots read-only; write tools may write them and the git folders."""
        outside = tuple(d for d in repo.git_dirs if not any(d.is_relative_to(r) for r in ctx.roots))
        if self.risk_for(args) is Risk.READ:
            return sandbox.Confinement(readable=(*ctx.roots, *outside))
        if outside:
            # a linked worktree, or a `.git` file that points anywhere: writes stay in the roots
            raise DeniedError(
                f"denied: {self.name}: the repository's git folder {outside[0]} is outside the "
                "workspace roots; ",
                server_setting(
                    f"add it with --root {outside[0]}", f"add {outside[0]} to tools.roots"
                ),
                " to let git write there.",
            )
        return sandbox.Confinement(writable=ctx.roots)

    def extra_env(self, repo: Repo, ctx: ToolContext, args: Any) -> dict[str, str]:
        """Environment for the main call beyond ``GIT_ENV``."""
        return {"GIT_OPTIONAL_LOCKS": "0"} if self.risk_for(args) is Risk.READ else {}

    def excludes(self, repo: Repo, ctx: ToolContext) -> list[str]:
        """``:(exclude)`` pathspecs for the paths that deny rules cover."""
        return path_excludes(ctx, repo.prefix)

    def git(self, argv: list[str], ctx: ToolContext, args: Any = None) -> tuple[bool, str, Any]:
        repo = self.repo(ctx)
        return self.git_in(repo, argv, ctx, args)

    def git_in(
        self, repo: Repo, argv: list[str], ctx: ToolContext, args: Any
    ) -> tuple[bool, str, Any]:
        env = {**GIT_ENV, **self.extra_env(repo, ctx, args)}
        full = ["git", *no_programs(repo.filters), *argv]
        done = run_argv(full, ctx.workspace, ctx, env, self.confinement(repo, ctx, args))
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
        repo = self.repo(ctx)
        argv = self.argv(args, ctx)
        if argv and argv[-1] == "--":
            argv = [*argv, *self.pathspecs(args, repo, ctx)]
        ok, output, data = self.git_in(repo, argv, ctx, args)
        if not ok:
            return self.failure(output, data)
        return ToolResult(ok=True, output=output, data=data)

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        """Pathspecs after ``--``: everything but the denied paths (none when nothing is)."""
        excludes = self.excludes(repo, ctx)
        return [".", *excludes] if excludes else []


def _paths(paths: list[str], ctx: ToolContext) -> list[str]:
    return [str(resolve_inside(p, ctx.roots)) for p in paths]


class NoArgs(ToolArgs):
    pass


class GitStatus(GitTool):
    name = "git_status"
    description = (
        "Show the working tree status: the branch and which files are modified, staged or "
        "untracked."
    )
    risk = Risk.READ
    Args = NoArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["status", "--short", "--branch", "--"]


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
        return ["diff", "--no-color", *_NO_EXT, *staged, "--"]

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        excludes = self.excludes(repo, ctx)
        chosen = _paths(args.paths, ctx)
        if excludes and not chosen:
            chosen = ["."]
        return [*chosen, *excludes]


class LogArgs(ToolArgs):
    max_count: int = Field(20, ge=1, le=10_000, description="Most commits to show.")
    rev: str | None = Field(None, description="Start from this revision (default HEAD).")
    patch: bool = Field(False, description="Show each commit's diff too (git log -p).")


class GitLog(GitTool):
    name = "git_log"
    description = "Show recent commits: short hash, date, author, subject (patch=true: diffs)."
    risk = Risk.READ
    Args = LogArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        rev = [_ref(args.rev, "revision")] if args.rev else []
        head = ["log", f"--max-count={args.max_count}", "--date=short"]
        if args.patch:
            return [*head, "--no-color", "-p", *_NO_EXT, *rev, "--"]
        return [*head, _LOG_FORMAT, *rev, "--"]

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        # without patches a log names no files: commits touching denied paths stay listed
        return super().pathspecs(args, repo, ctx) if args.patch else []

    def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        if args.patch:
            return super().run(args, ctx)
        ok, output, data = self.git(self.argv(args, ctx), ctx, args)
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
    rev: str = Field("HEAD", description="Commit (or REV:PATH file) to show.")


class GitShow(GitTool):
    name = "git_show"
    description = "Show a commit's message and diff, or a file at a revision (REV:PATH)."
    risk = Risk.READ
    Args = ShowArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["show", "--no-color", *_NO_EXT, _ref(args.rev, "revision"), "--"]

    def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        repo = self.repo(ctx)
        rev = _ref(args.rev, "revision")
        denied = refused_path(rev, ctx, repo.prefix)
        if denied is not None:
            raise DeniedError(
                f"denied: git_show: {denied} is covered by a deny path rule",
                see("magray policy show", aside=True),
            )
        kind = self.query(["cat-file", "-t", rev], ctx, repo.filters)
        if kind.returncode == 0 and kind.output.strip() == "blob" and ":" not in rev:
            raise ToolError(
                f"git_show shows files by path only (REV:PATH, e.g. HEAD:README.md); {rev!r} "
                "names a file's contents by hash."
            )
        specs = self.pathspecs(args, repo, ctx)
        header = ""
        if specs:
            # the message always shows; the diff leaves out the denied paths
            ok, header, data = self.git_in(repo, ["show", "-s", "--no-color", rev], ctx, args)
            if not ok:
                return self.failure(header, data)
        argv = [*self.argv(args, ctx), *specs]
        if specs:
            argv.insert(1, "--format=")
        ok, output, data = self.git_in(repo, argv, ctx, args)
        if not ok:
            return self.failure(output, data)
        if header and output:
            header += "\n"
        return ToolResult(ok=True, output=header + output, data=data)

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        return [] if ":" in args.rev else super().pathspecs(args, repo, ctx)


class AddArgs(ToolArgs):
    paths: list[str] = Field(min_length=1, description="Paths to stage ('.' for everything).")


class GitAdd(GitTool):
    name = "git_add"
    description = "Stage files for the next commit (git add)."
    risk = Risk.WRITE
    Args = AddArgs
    path_fields = ("paths",)

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["add", "--"]

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        return [*_paths(args.paths, ctx), *self.excludes(repo, ctx)]

    def preview(self, args: Any, ctx: ToolContext) -> str:
        return shlex.join(["git", "add", "--", *_paths(args.paths, ctx)])


class CommitArgs(ToolArgs):
    message: str = Field(min_length=1, description="The commit message.")


class GitCommit(GitTool):
    name = "git_commit"
    description = "Commit the staged changes with a message (no hooks run)."
    risk = Risk.WRITE
    Args = CommitArgs

    def argv(self, args: Any, ctx: ToolContext) -> list[str]:
        return ["commit", "--no-verify", "-m", args.message]

    def extra_env(self, repo: Repo, ctx: ToolContext, args: Any) -> dict[str, str]:
        local = self.query(["config", "--get-regexp", r"^user\.(name|email)$"], ctx, repo.filters)
        return identity_env(local.output if local.returncode == 0 else "", ctx)


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

    def pathspecs(self, args: Any, repo: Repo, ctx: ToolContext) -> list[str]:
        return []  # paths after ``--`` would check out files instead of switching

    def run(self, args: Any, ctx: ToolContext) -> ToolResult:
        repo = self.repo(ctx)
        excludes = self.excludes(repo, ctx)
        if excludes and not args.create:
            # a switch that would rewrite denied paths is refused
            rev = _ref(args.ref, "ref")
            spec = [f":(top,glob){x.split(')', 1)[1]}" for x in excludes]
            changed = self.query(
                ["diff", "--name-only", *_NO_EXT, "HEAD", rev, "--", *spec], ctx, repo.filters
            )
            if changed.returncode == 0 and changed.output.strip():
                first = changed.output.split()[0]
                raise DeniedError(
                    f"denied: git_checkout: switching to {rev} would change {first}, "
                    "which a deny path rule covers."
                )
        return super().run(args, ctx)


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
