"""Stopping a run at once: the process trees its steps started are killed, not waited for.

Tools such as ``shell_exec`` start each command in a session of its own (so a terminal's
Ctrl-C does not reach it, and a timeout can kill its whole group). When the user presses
Ctrl-C, the agent kills those trees itself: first every command the sandbox is running
(``magray.tools.sandbox.kill_running``: the tool calls waiting on them return at once),
then any other process that descends from MAGRAY and was started after the plan began
running (``Children.snapshot`` records what existed before) — an MCP server a step
started, a program that left its group — each by its process group and then by pid.

Process discovery reads ``/proc`` (Linux); elsewhere only the sandbox's commands are
killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

_PROC = Path("/proc")


def _parent_of(pid: int) -> int | None:
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (empty where ``/proc`` is not available)."""
    if not _PROC.is_dir():
        return set()
    children: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        parent = _parent_of(int(entry.name))
        if parent is not None:
            children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def kill_trees(pids: set[int]) -> None:
    """SIGKILL each process's group (never MAGRAY's own) and the process itself."""
    own_group = os.getpgrp()
    for pid in pids:
        with contextlib.suppress(OSError):
            group = os.getpgid(pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class Children:
    """The processes a run started: ``snapshot`` before it runs, ``kill`` when interrupted."""

    def __init__(self) -> None:
        self._before: set[int] = set()

    def snapshot(self) -> None:
        self._before = descendants(os.getpid())

    def kill(self) -> None:
        from magray.tools.sandbox import kill_running

        kill_running()
        # twice: a process may have forked between the listing and the kill
        for _ in range(2):
            kill_trees(descendants(os.getpid()) - self._before)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore further Ctrl-C while a run cleans up (only the main thread can set handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
