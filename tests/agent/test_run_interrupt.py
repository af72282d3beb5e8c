"""Ctrl-C during a hung step, through a real `magray run` process: kill, report, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from magray.agent.interrupt import descendants

from .conftest import Scripted, oa_plan, openai_config, step

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")

SAFETY_S = 600  # only bounds a broken run; nothing here depends on speed

# A shell that starts a command in the background without job control (`pytest … &` in a
# script, `nohup`) starts it with SIGINT ignored, and children inherit that: Python then
# installs no Ctrl-C handler, so `magray run` would never see the interrupt and the test
# would wait out its safety bound. Start it the way a terminal does, with SIGINT at its
# default action (exec keeps the pid, so the process group is still `magray run`'s).
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def _ignores_sigint(pid: int) -> bool:
    """Whether the process ignores SIGINT (its ``SigIgn`` mask in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _wait_for_sleep(proc: subprocess.Popen[str], seconds: str) -> int:
    """The pid of the step's `sleep`, once the step has started it."""
    deadline = time.monotonic() + SAFETY_S
    while time.monotonic() < deadline:
        for pid in descendants(proc.pid):
            if _cmdline(pid) == ["sleep", seconds]:
                return pid
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"magray run ended before the step started:\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the step never started")


def test_ctrl_c_kills_the_hung_step_prints_the_report_and_exits_130(
    server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    seconds = f"1{os.getpid() % 100_000:05d}"  # a command line no other test shares
    server.add(oa_plan(step("s1", "shell_exec", {"argv": ["sleep", seconds]})))
    argv = [sys.executable, "-c", _WITH_DEFAULT_SIGINT]
    argv += ["-m", "magray", "run", "wait a long time", "--yes"]
    argv += ["--root", str(repo), "--json", "--no-memory", "--timeout", "1000"]
    # its own process group, like a terminal's foreground job: Ctrl-C goes to the group
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        sleeper = _wait_for_sleep(proc, seconds)
        assert not _ignores_sigint(proc.pid), "magray run was started with Ctrl-C ignored"
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=SAFETY_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["done"] is False
    (only,) = report["steps"]
    assert only["id"] == "s1" and only["status"] == "interrupted"
    assert "interrupted" in err
    assert not _alive(sleeper)  # the step's process tree was killed, not left behind
    # and no new one was started by a retry after the interrupt
    assert not [p for p in Path("/proc").iterdir() if _is_sleep(p, seconds)]
    assert len(server.requests) == 1  # no retry, no critic, no re-plan after Ctrl-C


def _is_sleep(entry: Path, seconds: str) -> bool:
    if not entry.name.isdigit():
        return False
    pid = int(entry.name)
    return _cmdline(pid) == ["sleep", seconds] and _alive(pid)
