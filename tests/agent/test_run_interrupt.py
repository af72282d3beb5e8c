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

SAFETY_S = 120  # only bounds a broken run; nothing here depends on speed


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
    argv = [sys.executable, "-m", "magray", "run", "wait a long time", "--yes"]
    argv += ["--root", str(repo), "--json", "--no-memory", "--timeout", "1000"]
    # its own process group, like a terminal's foreground job: Ctrl-C goes to the group
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        sleeper = _wait_for_sleep(proc, seconds)
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
