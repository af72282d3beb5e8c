"""shell_exec: run an argv without a shell, inside the OS sandbox, with a clean environment.

The process runs confined by ``tools.sandbox`` (see ``magray.tools.sandbox``): the roots
writable (their ``.git`` read-only), the rest of the file system read-only, no network
unless the call asks for it (``network=true``: a network call that is approved call by
call, never by a rule), only allow-listed environment variables. On timeout, cancellation
(``sandbox.kill_running``) or when the program ends, its whole process tree is killed.
Output goes to a temporary file (never an unbounded pipe) and only the first
``output_cap`` characters come back, with a note when some were cut.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.tools import sandbox
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.git_safety import shell_git_env
from magray.tools.paths import resolve_inside

#: options that make a program run another program (or a configured command), per program;
#: a command-prefix allow rule never covers a call that adds one of them
_RUNS_PROGRAMS: dict[str, tuple[str, ...]] = {
    "git": (
        "--upload-pack",
        "--receive-pack",
        "--exec",
        "--exec-path",
        "--config",
        "--config-env",
        "--ext-diff",
        "--textconv",
        "--open-files-in-pager",
        "--extcmd",
        "--template",
        "--output",
        "--run",
        "--tool",
    ),
    "find": ("-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprintf", "-fls"),
    "rg": ("--pre",),
    "tar": ("--to-command", "--use-compress-program", "-I", "--checkpoint-action", "--info-script"),
}


#: git's short options that run programs, per subcommand ("" = before the subcommand)
_GIT_SHORT: dict[str, tuple[str, ...]] = {
    "": ("-c",),
    "clone": ("-u", "-c"),
    "archive": ("-o",),
    "commit": ("-c", "-C"),
    "difftool": ("-x", "-t"),
    "grep": ("-O",),
    "rebase": ("-x",),
}

#: programs whose short options may be clustered (``-vu CMD``) and long ones abbreviated
_GETOPT = frozenset({"git", "tar"})


def _risky(arg: str, option: str, getopt: bool) -> bool:
    if arg == option or arg.startswith(option + "="):
        return True
    if len(option) == 2 and getopt:  # a short option, alone, clustered or glued to its value
        return arg.startswith("-") and not arg.startswith("--") and option[1] in arg[1:]
    if len(option) == 2:
        return arg.startswith(option)
    name = arg.split("=", 1)[0]
    # git takes any unambiguous prefix of a long option: --upload-p=CMD
    return getopt and option.startswith("--") and len(name) > 3 and option.startswith(name)


def program_running_option(argv: Sequence[str], start: int) -> str | None:
    """The first argument of ``argv[start:]`` that makes ``argv[0]`` run other programs.

    Every spelling counts: ``--upload-pack=x`` and ``--upload-pack x``, an abbreviated
    long option (``--upload-p=x``), short options clustered or glued to their value
    (``-vu x``, ``-ux``), and ``tar``'s old dashless cluster (``tar xIf prog a.tar``).
    Arguments after ``--`` are not options.
    """
    if not argv:
        return None
    program = Path(argv[0]).name
    risky = _RUNS_PROGRAMS.get(program)
    if risky is None:
        return None
    getopt = program in _GETOPT
    subcommand: str | None = ""
    for i in range(1, len(argv)):
        arg = argv[i]
        if arg == "--":
            return None
        if program == "tar" and i == 1 and not arg.startswith("-"):
            arg = "-" + arg  # tar's first argument may be a cluster without its '-'
        options = risky
        if program == "git":
            options = (*risky, *_GIT_SHORT.get(subcommand or "", ()))
            if subcommand == "" and not arg.startswith("-") and argv[i - 1] not in ("-C", "-c"):
                subcommand = arg
        if i >= start and any(_risky(arg, option, getopt) for option in options):
            return argv[i]
    return None


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished (or killed) process."""

    argv: tuple[str, ...]
    returncode: int | None
    output: str
    timed_out: bool
    truncated: bool
    cancelled: bool
    duration_ms: int


def workspace_confinement(ctx: ToolContext, network: bool = False) -> sandbox.Confinement:
    """The roots writable, their top-level ``.git`` read-only: the confinement of commands.

    A root that is itself a ``.git`` folder (added for a linked worktree) stays read-only, and
    so do MAGRAY's own home folders that lie in a root (``ToolContext.own_folders``).
    """
    git_dirs = tuple(
        root / ".git"
        for root in ctx.roots
        if (root / ".git").exists() and not (root / ".git").is_symlink()
    ) + tuple(root for root in ctx.roots if root.name == ".git")
    # MAGRAY's own home inside a root (settings, policy, audit log) stays read-only too
    own = tuple(
        folder
        for folder in ctx.own_folders
        if folder.is_dir() and any(folder.is_relative_to(root) for root in ctx.roots)
    )
    return sandbox.Confinement(writable=ctx.roots, readable=git_dirs + own, network=network)


def run_argv(
    argv: Sequence[str],
    cwd: Path,
    ctx: ToolContext,
    extra_env: Mapping[str, str] | None = None,
    confinement: sandbox.Confinement | None = None,
) -> Completed:
    """Run ``argv`` (no shell) in ``cwd`` in the sandbox; output capped; killed on timeout.

    ``confinement`` defaults to ``workspace_confinement(ctx)`` without network.
    """
    if not argv:
        raise ToolError("the command is empty; give at least the program name.")
    env = sandbox.clean_env(ctx.base_env())
    env.update(extra_env or {})
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            proc = sandbox.spawn(
                argv,
                cwd,
                env,
                out,
                ctx.sandbox,
                confinement or workspace_confinement(ctx),
                ctx.secret_files,
            )
        except FileNotFoundError:
            raise ToolError(f"program {argv[0]!r} was not found on PATH.") from None
        except PermissionError:
            raise ToolError(f"program {argv[0]!r} is not executable.") from None
        timed_out = False
        try:
            proc.wait(timeout=ctx.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            sandbox.kill_tree(proc)
        finally:
            cancelled = sandbox.finish(proc)
        out.seek(0)
        raw = out.read(ctx.output_cap * 4 + 4)
        size = out.seek(0, 2)
    text = raw.decode("utf-8", errors="replace")
    truncated = len(text) > ctx.output_cap or size > len(raw)
    if truncated:
        text = text[: ctx.output_cap] + (
            f"\n[… output truncated at {ctx.output_cap} characters; {size} bytes in all]"
        )
    return Completed(
        argv=tuple(argv),
        returncode=None if timed_out else proc.returncode,
        output=text,
        timed_out=timed_out,
        truncated=truncated,
        cancelled=cancelled,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


class ExecArgs(ToolArgs):
    argv: list[str] = Field(min_length=1, description="Program and arguments; no shell is used.")
    cwd: str | None = Field(None, description="Working folder inside the workspace.")
    network: bool = Field(
        False, description="Let the command reach the network (always asks for approval)."
    )


class ShellExec(Tool[ExecArgs]):
    name = "shell_exec"
    description = (
        "Run a command-line program (a test runner, linter, build tool or system command) "
        "with its arguments (argv list, no shell: no pipes, globs or variables) "
        "in the workspace, in a sandbox (workspace writable, no network unless network=true), "
        "with a timeout and a minimal environment."
    )
    risk = Risk.EXEC
    Args = ExecArgs
    path_fields = ("cwd",)

    def risk_for(self, args: ExecArgs) -> Risk:
        return Risk.NETWORK if args.network else Risk.EXEC

    def command(self, args: ExecArgs) -> list[str] | None:
        return list(args.argv)

    def approval_reason(self, args: ExecArgs, ctx: ToolContext) -> str | None:
        why = sandbox.unavailable(ctx.sandbox)
        if why is not None:
            return f"no OS sandbox is available ({why}), so every command asks for approval"
        if args.network and ctx.sandbox.mode is not sandbox.SandboxMode.FULL_ACCESS:
            return "network access for a command is approved call by call (or full-access)"
        return None

    def preview(self, args: ExecArgs, ctx: ToolContext) -> str:
        cwd = resolve_inside(args.cwd or ".", ctx.roots)
        net = "network" if args.network else "no network"
        confined = "unconfined" if sandbox.unavailable(ctx.sandbox) else ctx.sandbox.mode.value
        return f"(cd {shlex.quote(str(cwd))} && {shlex.join(args.argv)})  # {confined}, {net}"

    def run(self, args: ExecArgs, ctx: ToolContext) -> ToolResult:
        cwd = resolve_inside(args.cwd or ".", ctx.roots)
        if not cwd.is_dir():
            raise ToolError(f"working folder {args.cwd} is not a folder.")
        git_env = shell_git_env(args.argv, cwd, ctx)
        confinement = workspace_confinement(ctx, args.network)
        done = run_argv(args.argv, cwd, ctx, git_env, confinement)
        data: dict[str, Any] = {
            "argv": list(done.argv),
            "exit_code": done.returncode,
            "timed_out": done.timed_out,
            "cancelled": done.cancelled,
            "truncated": done.truncated,
            "duration_ms": done.duration_ms,
        }
        if done.timed_out:
            error = f"timed out after {ctx.timeout:g} s; the process tree was killed."
            return ToolResult(ok=False, output=done.output, data=data, error=error)
        if done.cancelled:
            error = "cancelled; the process tree was killed."
            return ToolResult(ok=False, output=done.output, data=data, error=error)
        if done.returncode != 0:
            error = f"exit status {done.returncode}"
            if done.returncode is not None and done.returncode < 0:
                error = f"killed by signal {-done.returncode}"
            return ToolResult(ok=False, output=done.output, data=data, error=error)
        return ToolResult(ok=True, output=done.output, data=data)


TOOLS: tuple[Tool[Any], ...] = (ShellExec(),)
