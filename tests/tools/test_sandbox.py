"""The OS sandbox (bubblewrap) of shell_exec, through the real CLI and real processes.

These tests need ``bwrap``: on Linux its absence is a failure, not a skip
(``scripts/system-deps.sh`` installs it; `make test` runs that script first).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.tools import sandbox
from magray.tools.base import ToolContext, ToolResult
from magray.tools.sandbox import SandboxConfig, SandboxMode
from magray.tools.shell import ShellExec
from tests.conftest import REPO

RUNNER = CliRunner()
SHELL = ShellExec()
SECRETS = {
    "GH_PAT": "ghp_secret",
    "DATABASE_URL": "postgres://u:pw@db/x",
    "HF_AUTH": "hf_secret",
    "OPENAI_API_KEY": "sk-secret",
}


def cli(args: Sequence[str], env: dict[str, str] | None = None) -> Result:
    result = RUNNER.invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def shell(root: Path, argv: list[str], *flags: str, env: dict[str, str] | None = None) -> Result:
    base = ["tools", "run", "shell_exec", "--root", str(root), "--json", *flags]
    return cli([*base, "-a", f"argv={json.dumps(argv)}"], env)


def call(ctx: ToolContext, argv: list[str], **extra: object) -> ToolResult:
    return SHELL.run(SHELL.parse({"argv": argv, **extra}), ctx)


@pytest.fixture
def nested(tmp_path: Path) -> Path:
    """A workspace two folders below ``tmp_path``: ``../../x`` lands in ``tmp_path``."""
    root = tmp_path / "a" / "ws"
    root.mkdir(parents=True)
    return root


def test_bwrap_works_here() -> None:
    if sys.platform.startswith("linux"):
        assert sandbox.unavailable(SandboxConfig()) is None, "install bubblewrap"


def test_touch_outside_the_root_writes_nothing_outside(nested: Path, tmp_path: Path) -> None:
    result = shell(nested, ["touch", "../../outside.txt", "inside.txt"], "--yes")
    assert result.exit_code == 0, result.stderr
    assert (nested / "inside.txt").exists()
    assert not (tmp_path / "outside.txt").exists()


def test_the_rest_of_the_file_system_is_read_only(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=30)
    escape = REPO / "sandbox-escape.txt"
    try:
        result = call(ctx, ["touch", str(escape)])
        assert not result.ok and "Read-only file system" in result.output
        # not even by remounting / (bwrap keeps root's capabilities unless they are dropped)
        remount = call(ctx, ["sh", "-c", f"mount -o remount,rw / ; touch {escape}"])
        assert not remount.ok and "Read-only file system" in remount.output
        assert not escape.exists()
    finally:
        escape.unlink(missing_ok=True)
    status = call(ctx, ["cat", "/proc/self/status"]).output
    assert "CapEff:\t0000000000000000" in status


def test_git_folder_is_read_only_for_commands(repo: Path) -> None:
    ctx = ToolContext(roots=(repo,), timeout=30)
    before = (repo / ".git" / "config").read_text(encoding="utf-8")
    result = call(ctx, ["sh", "-c", "echo '[core] fsmonitor = x' >> .git/config"])
    assert not result.ok and "Read-only file system" in result.output
    assert (repo / ".git" / "config").read_text(encoding="utf-8") == before


def test_read_only_mode_refuses_writes_in_the_root(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=30, sandbox=SandboxConfig(SandboxMode.READ_ONLY))
    result = call(ctx, ["touch", "new.txt"])
    assert not result.ok and "Read-only file system" in result.output
    assert call(ctx, ["cat", "hello.txt"]).output == "one\ntwo\nthree\n"
    assert not (workspace / "new.txt").exists()


def test_full_access_mode_writes_anywhere(nested: Path, tmp_path: Path) -> None:
    config = SandboxConfig(SandboxMode.FULL_ACCESS)
    ctx = ToolContext(roots=(nested,), timeout=30, sandbox=config)
    assert call(ctx, ["touch", "../../outside.txt"]).ok
    assert (tmp_path / "outside.txt").exists()


def test_allowed_git_log_prefix_cannot_write_elsewhere(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert cli(["policy", "allow", "shell_exec", "--command", "git log"]).exit_code == 0
    plain = shell(repo, ["git", "log", "--oneline"])
    assert plain.exit_code == 0 and "initial" in json.loads(plain.stdout)["output"]
    argv = ["git", "log", f"--output={elsewhere}/x"]
    refused = shell(repo, argv)
    assert refused.exit_code == 4  # the allow rule does not cover --output: it asks
    approved = shell(repo, argv, "--yes")
    assert approved.exit_code in (0, 1)
    assert not (elsewhere / "x").exists()


def test_allowed_git_fetch_prefix_refuses_upload_pack(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert cli(["policy", "allow", "shell_exec", "--command", "git fetch"]).exit_code == 0
    for argv in (
        ["git", "fetch", f"--upload-pack=touch {marker}", "."],
        ["git", "fetch", "--upload-pack", f"touch {marker}", "."],
    ):
        result = shell(repo, argv)
        assert result.exit_code == 4, result.stdout
        assert "needs approval" in json.loads(result.stdout)["error"]
    assert not marker.exists()


def test_env_shows_no_secrets(workspace: Path) -> None:
    result = shell(workspace, ["env"], "--yes", env=SECRETS)
    assert result.exit_code == 0
    output = json.loads(result.stdout)["output"]
    for name, value in SECRETS.items():
        assert name not in output and value not in output
    assert "MAGRAY_" not in output
    assert "PATH=" in output


def test_parent_environ_is_not_magrays(workspace: Path, magray_home: Path) -> None:
    """A real `magray` process: the command's parent is the sandbox's, not MAGRAY's."""
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(REPO / "src")}
    argv = ["sh", "-c", 'tr "\\0" "\\n" < /proc/$PPID/environ; echo "ppid=$PPID"']
    base = [sys.executable, "-m", "magray", "tools", "run", "shell_exec", "--yes", "--json"]
    done = subprocess.run(
        [*base, "--root", str(workspace), "-a", f"argv={json.dumps(argv)}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)["output"]
    assert "ppid=" in output
    assert "MAGRAY_" not in output
    for name, value in SECRETS.items():
        assert name not in output and value not in output


@pytest.fixture
def listener() -> Iterator[int]:
    """A real TCP server on loopback; yields its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)

    def serve() -> None:
        try:
            conn, _ = server.accept()
            conn.sendall(b"hello")
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    yield port
    if thread.is_alive():  # nobody connected (the sandbox refused): release accept()
        socket.create_connection(("127.0.0.1", port)).close()
    thread.join()
    server.close()


def _connect(port: int) -> list[str]:
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}))\n"
        "print(s.recv(5).decode())"
    )
    return [sys.executable, "-c", code]


def test_network_is_refused_by_default(workspace: Path, listener: int) -> None:
    result = shell(workspace, _connect(listener), "--yes")
    assert result.exit_code == 1
    assert "ConnectionRefusedError" in json.loads(result.stdout)["output"]


def test_network_when_the_call_is_allowed_it(workspace: Path, listener: int) -> None:
    flags = ("--yes", "-a", "network=true")
    result = shell(workspace, _connect(listener), *flags)
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["output"] == "hello\n"
    read_only = shell(workspace, _connect(listener), "--read-only", "-a", "network=true")
    assert read_only.exit_code == 4
    # an allow rule for the command does not grant it the network: that is asked per call
    assert cli(["policy", "allow", "shell_exec", "--command", sys.executable]).exit_code == 0
    ruled = shell(workspace, _connect(listener), "-a", "network=true")
    assert ruled.exit_code == 4 and "approved call by call" in json.loads(ruled.stdout)["error"]


def test_without_a_sandbox_every_command_asks(workspace: Path) -> None:
    assert cli(["policy", "allow", "shell_exec", "--command", "echo"]).exit_code == 0
    env = {"MAGRAY_TOOLS_BWRAP": str(workspace / "no-such-bwrap")}
    result = shell(workspace, ["echo", "hi"], env=env)
    assert result.exit_code == 4
    assert result.stderr.count("no OS sandbox for commands") == 1
    assert "every command asks for approval" in json.loads(result.stdout)["error"]
    approved = shell(workspace, ["echo", "hi"], "--yes", env=env)
    assert approved.exit_code == 0 and json.loads(approved.stdout)["output"] == "hi\n"
    full = {**env, "MAGRAY_TOOLS_SANDBOX": "full-access"}
    assert shell(workspace, ["echo", "hi"], env=full).exit_code == 0


def _running(token: str) -> bool:
    for entry in Path("/proc").iterdir():
        try:
            if token in (entry / "cmdline").read_bytes().decode(errors="replace"):
                return True
        except OSError:
            continue
    return False


def _wait_until(check: object, what: str) -> None:
    deadline = time.monotonic() + 120
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_kill_running_cancels_the_whole_tree(workspace: Path) -> None:
    token = "918273"
    ctx = ToolContext(roots=(workspace,), timeout=600)
    results: list[ToolResult] = []
    script = f"sleep {token} & sleep {token}1"
    worker = threading.Thread(target=lambda: results.append(call(ctx, ["sh", "-c", script])))
    worker.start()
    _wait_until(lambda: _running(f"sleep\0{token}1"), "the command never started")
    assert sandbox.kill_running() >= 1
    worker.join()
    (result,) = results
    assert not result.ok and result.data["cancelled"] is True
    assert result.error == "cancelled; the process tree was killed."
    _wait_until(lambda: not _running(f"sleep\0{token}"), "a child outlived the cancel")


def test_a_finished_command_leaves_no_children(workspace: Path) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=60)
    token = "827364"
    assert call(ctx, ["sh", "-c", f"sleep {token} & echo started"]).output == "started\n"
    _wait_until(lambda: not _running(f"sleep\0{token}"), "a background child outlived its command")
