"""shell_exec: argv without a shell, timeouts that kill, output caps, a scrubbed environment."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from magray.errors import DeniedError
from magray.tools.base import ToolContext, ToolResult
from magray.tools.sandbox import clean_env
from magray.tools.shell import ShellExec, program_running_option

SHELL = ShellExec()


def run(ctx: ToolContext, argv: list[str], cwd: str | None = None) -> ToolResult:
    return SHELL.run(SHELL.parse({"argv": argv, "cwd": cwd}), ctx)


def test_no_shell_injection(ctx: ToolContext) -> None:
    result = run(ctx, ["echo", "a; rm -rf /"])
    assert result.ok
    assert result.output == "a; rm -rf /\n"


def _running(token: str) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if token in (entry / "cmdline").read_bytes().decode(errors="replace"):
                return True
        except OSError:
            continue
    return False


def test_hung_command_is_killed_at_the_timeout(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=1)
    result = run(ctx, ["sh", "-c", "sleep 736251 & sleep 7362519"])
    assert not result.ok
    assert result.data["timed_out"] is True
    assert "timed out after 1 s" in (result.error or "")
    deadline = time.monotonic() + 120  # the kill is asynchronous: wait for it, never time it
    while _running("sleep\x00736251"):
        assert time.monotonic() < deadline, "a process of the timed-out command survived"
        time.sleep(0.05)


def test_output_is_capped_with_a_note(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), output_cap=50)
    result = run(ctx, [sys.executable, "-c", "print('y' * 100000)"])
    assert result.output.startswith("y" * 50)
    assert "output truncated at 50 characters" in result.output
    assert result.data["truncated"] is True


def test_the_environment_is_an_allow_list(workspace: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-x", "GH_PAT": "t", "HOME": "/tmp"}
    env |= {"DATABASE_URL": "postgres://u:p@h/db", "HF_AUTH": "hf", "LC_ALL": "C", "TZ": "UTC"}
    ctx = ToolContext(roots=(workspace,), env=env)
    out = run(ctx, ["env"]).output
    for secret in ("OPENAI_API_KEY", "sk-x", "GH_PAT", "DATABASE_URL", "postgres", "HF_AUTH"):
        assert secret not in out
    assert {"HOME=/tmp", "LC_ALL=C", "TZ=UTC"} <= set(out.splitlines())
    assert clean_env({"DB_PASSWORD": "p", "LANG": "C", "LC_CTYPE": "C"}) == {
        "LANG": "C",
        "LC_CTYPE": "C",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
    }


def test_failing_command_reports_its_exit_status(ctx: ToolContext) -> None:
    result = run(ctx, ["sh", "-c", "echo oops >&2; exit 3"])
    assert not result.ok
    assert result.error == "exit status 3"
    assert result.output == "oops\n"


def test_cwd_must_stay_inside_the_roots(ctx: ToolContext, workspace: Path) -> None:
    assert run(ctx, ["pwd"], cwd="pkg").output.strip() == str(workspace / "pkg")
    with pytest.raises(DeniedError):
        run(ctx, ["pwd"], cwd="..")


def test_preview_shows_the_exact_argv(ctx: ToolContext) -> None:
    shown = SHELL.preview(SHELL.parse({"argv": ["echo", "a b"]}), ctx)
    assert shown.endswith("&& echo 'a b')  # workspace-write, no network")


@pytest.mark.parametrize(
    ("argv", "start", "found"),
    [
        (["git", "fetch", "--upload-pack=touch /tmp/x", "origin"], 2, "--upload-pack=touch /tmp/x"),
        (["git", "fetch", "--upload-pack", "x"], 2, "--upload-pack"),
        (["git", "clone", "-ux", "repo"], 2, "-ux"),
        (["git", "log", "--output=/elsewhere/x"], 2, "--output=/elsewhere/x"),
        (["/usr/bin/git", "clone", "-c", "core.sshCommand=x", "r"], 2, "-c"),
        (["find", ".", "-exec", "rm", "{}", ";"], 1, "-exec"),
        (["git", "clone", "-vu", "touch /tmp/x", "repo"], 2, "-vu"),
        (["git", "fetch", "--upload-p=touch /tmp/x"], 2, "--upload-p=touch /tmp/x"),
        (["git", "log", "--outp", "/elsewhere/x"], 2, "--outp"),
        (["tar", "xIf", "sh -c id", "a.tar"], 1, "xIf"),
        (["tar", "-x", "--use-compress-prog=sh", "-f", "a.tar"], 1, "--use-compress-prog=sh"),
        (["git", "log", "--output-indicator-new=>"], 2, None),
        (["git", "diff", "--no-ext-diff", "--no-textconv", "--stat"], 2, None),
        (["tar", "xzf", "a.tar.gz"], 1, None),
        (["git", "fetch", "origin", "--", "-u"], 2, None),
        (["git", "-c", "core.pager=sh", "log"], 1, "-c"),
        (["git", "rebase", "-x", "make", "main"], 2, "-x"),
        (["git", "grep", "-Ovim", "foo"], 2, "-Ovim"),
        (["git", "status", "-uno"], 2, None),
        (["git", "fetch", "-u", "origin"], 2, None),
        (["git", "log", "-p", "-c"], 2, None),
        (["git", "fetch", "origin"], 2, None),
        (["pytest", "-x"], 1, None),
    ],
)
def test_program_running_options(argv: list[str], start: int, found: str | None) -> None:
    assert program_running_option(argv, start) == found
