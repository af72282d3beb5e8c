"""The fold of the access statistics in short steps (``access_stats.fold_in_steps``): the
same histories as one fold in one transaction, the write lock free between two steps, and
exact when it is killed, when two folds run at once and when records go meanwhile."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from magray.config import load_settings
from magray.memory.access import bounded
from magray.memory.backends.sqlite import access_stats
from magray.memory.records import NewRecord
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0
Accesses = dict[int, list[float]]


def connect(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection like the store's statistics connection."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=timeout)
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def log(conn: sqlite3.Connection, events: list[tuple[int, float]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    access_stats.bump(conn, events)
    conn.execute("COMMIT")


def one_fold(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    access_stats.fold(conn)
    conn.execute("COMMIT")


def state(conn: sqlite3.Connection) -> tuple[list[Any], list[Any], int]:
    return (
        conn.execute("SELECT num, times FROM access_history ORDER BY num").fetchall(),
        conn.execute("SELECT * FROM record_stats ORDER BY num").fetchall(),
        conn.execute("SELECT COUNT(*) FROM access_log").fetchone()[0],
    )


def copy(src: Path, dst: Path) -> Path:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()
    return dst


@pytest.fixture
def store(magray_home: Path) -> tuple[Path, list[int], Accesses]:
    """A store of 40 records with folded histories (some full) and a pending log of 2,000
    accesses, some earlier than the history they join, some to a record forgotten after
    its accesses were counted; with every access of the live records, by label."""
    settings = load_settings({"memory.auto_lifecycle": False})
    with Memory(settings, embedder=HashEmbedder()) as memory:
        added = memory.remember_many([NewRecord(text=f"note number {i}") for i in range(40)])
        nums = [memory.backend.resolve(r.id).num for r in added]
        path = Path(memory.backend.store.path)  # type: ignore[attr-defined]
    rng = random.Random(7)
    seen: Accesses = {num: [] for num in nums}
    conn = connect(path)
    for pending in (False, True):
        events = []
        for i in range(2000):
            num = nums[int(rng.random() ** 2 * len(nums))]  # a few busy records
            at = T0 + (i if not pending or i % 5 else i - 1500) + rng.random()
            events.append((num, at))
            seen[num].append(at)
        log(conn, events)
        if not pending:
            one_fold(conn)
    gone = nums[-1]
    fk = sqlite3.connect(path, isolation_level=None)
    fk.execute("PRAGMA foreign_keys = ON")
    fk.execute("DELETE FROM records WHERE num = ?", (gone,))
    fk.close()
    log(conn, [(gone, T0 + 9999.0)])  # a bump that raced the delete
    del seen[gone]
    conn.close()
    return path, nums[:-1], seen


def expected(path: Path, tmp_path: Path) -> tuple[list[Any], list[Any], int]:
    conn = connect(copy(path, tmp_path / "one-fold.db"))
    one_fold(conn)
    try:
        return state(conn)
    finally:
        conn.close()


def on_pause(monkeypatch: pytest.MonkeyPatch, hook: Callable[[int], None]) -> None:
    """Call ``hook(n)`` at the fold's n-th pause (1, 2, ...): odd ones come before a step's
    write transaction, even ones after its commit."""
    calls = [0]

    def pause() -> None:
        calls[0] += 1
        hook(calls[0])

    monkeypatch.setattr(access_stats, "pause", pause)
    monkeypatch.setattr(access_stats, "_paced", lambda cursor: iter(cursor.fetchall()))


@pytest.mark.parametrize("step", [1, 7, 100, 5000])
def test_a_fold_in_steps_writes_what_one_fold_writes(
    store: tuple[Path, list[int], Accesses],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    step: int,
) -> None:
    path, _, seen = store
    monkeypatch.setattr(access_stats, "STEP_ROWS", step)
    want = expected(path, tmp_path)
    conn = connect(path)
    steps = access_stats.fold_in_steps(conn)
    got = state(conn)
    assert got == want and got[2] == 0
    assert (steps > 1) == (step < 2001)
    assert access_stats.access_times(conn) == {n: bounded(ts) for n, ts in seen.items() if ts}
    live = {num for (num,) in conn.execute("SELECT num FROM records")}
    assert {row[0] for row in got[1]} <= live  # the forgotten record's counters are dropped


def test_the_write_lock_is_free_between_two_steps(
    store: tuple[Path, list[int], Accesses], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, seen = store
    monkeypatch.setattr(access_stats, "STEP_ROWS", 50)
    other = connect(path, timeout=0)  # fails at once if the lock is held
    other.execute("PRAGMA busy_timeout = 0")
    wrote: list[int] = []
    views: list[bool] = []
    want = {n: bounded(ts) for n, ts in seen.items() if ts}

    def hook(n: int) -> None:
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?)", (str(n),))
        other.execute("COMMIT")
        wrote.append(n)
        views.append(access_stats.access_times(other) == want)  # history + log: each once

    on_pause(monkeypatch, hook)
    conn = connect(path)
    steps = access_stats.fold_in_steps(conn)
    assert steps > 5 and len(wrote) == 2 * steps and all(views)
    assert state(conn)[2] == 0

    # The check has teeth: inside one fold's transaction the other writer is refused.
    log(conn, [(n, T0 + 50_000) for n in seen])
    refused: list[str] = []

    def appended(old: bytes | None, times: list[float]) -> bytes:
        try:
            other.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            refused.append(str(exc))
        return real(old, times)

    real = access_stats._appended
    monkeypatch.setattr(access_stats, "_appended", appended)
    one_fold(conn)
    assert refused and all("locked" in e for e in refused)


@pytest.mark.parametrize("where", ["between", "inside"])
@pytest.mark.parametrize("at", [1, 2, 5])
def test_a_fold_killed_anywhere_loses_nothing_and_counts_nothing_twice(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, where: str, at: int
) -> None:
    # A fold in another process is killed (SIGKILL) after its ``at``-th committed step, or
    # inside its ``at``-th step's write transaction (the history written, the log not yet
    # cut); the next fold moves the rest, and the store ends as after one fold.
    path, _, _ = store
    want = expected(path, tmp_path)
    script = textwrap.dedent(
        f"""
        import os, signal, sqlite3
        from magray.memory.backends.sqlite import access_stats

        access_stats.STEP_ROWS = 100
        commits = 0

        class Conn(sqlite3.Connection):
            def execute(self, sql, *args):
                global commits
                if {where!r} == "inside" and sql.startswith("DELETE FROM main.access_log"):
                    if commits + 1 == {at}:
                        os.kill(os.getpid(), signal.SIGKILL)
                return super().execute(sql, *args)

        def pause():
            global commits
            pause.calls += 1
            if pause.calls % 2 == 0:  # after a step's commit
                commits += 1
                if {where!r} == "between" and commits == {at}:
                    os.kill(os.getpid(), signal.SIGKILL)
        pause.calls = 0
        access_stats.pause = pause
        access_stats._paced = lambda cursor: iter(cursor.fetchall())

        conn = sqlite3.connect({str(path)!r}, isolation_level=None, factory=Conn)
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA temp_store = MEMORY")
        access_stats.fold_in_steps(conn)
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    conn = connect(path)
    left = state(conn)[2]
    assert 0 < left <= 2001 - 100 * (at - (where == "inside"))  # killed in the middle
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert access_stats.fold_in_steps(conn) == 0  # its claim holds until it expires
    conn.execute("UPDATE meta SET value = '0 0' WHERE key = ?", (access_stats.LEASE_KEY,))
    assert access_stats.fold_in_steps(conn) > 0
    assert state(conn) == want
    assert conn.execute("SELECT value FROM meta WHERE key = 'access_fold'").fetchone() is None


def test_two_folds_at_once_count_every_access_once(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deterministically: fold A has read the log and is about to write its first step when
    # fold B (another connection, as another worker) commits a step over the same rows.
    path, _, _ = store
    want = expected(path, tmp_path)
    monkeypatch.setattr(access_stats, "STEP_ROWS", 100)
    monkeypatch.setattr(access_stats, "LEASE_SECONDS", 0.0)  # A's claim expired at once
    a, b = connect(path), connect(path)

    class Stop(Exception):
        pass

    def hook(n: int) -> None:
        if n == 1:  # A's first pause, before its first write
            on_pause(monkeypatch, lambda m: _raise(Stop()) if m == 2 else None)
            with pytest.raises(Stop):
                access_stats.fold_in_steps(b)  # B commits one step, then stops
            monkeypatch.setattr(access_stats, "pause", lambda: None)

    on_pause(monkeypatch, hook)
    assert access_stats.fold_in_steps(a) == 0  # its step changed meanwhile: A stops
    left = state(a)[2]
    assert 0 < left < 2001
    assert access_stats.fold_in_steps(a) > 0
    assert state(a) == want


def test_a_fold_at_work_keeps_others_from_starting(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = store
    want = expected(path, tmp_path)
    monkeypatch.setattr(access_stats, "STEP_ROWS", 100)
    a, b = connect(path), connect(path)
    others: list[int] = []

    def hook(n: int) -> None:
        if n in (1, 6):  # before A's first step, after its third
            others.append(access_stats.fold_in_steps(b))
            others.append(state(b)[2])

    on_pause(monkeypatch, hook)
    assert access_stats.fold_in_steps(a) > 3
    assert others[0] == others[2] == 0 and others[1] == 2001 and others[3] < 2001
    assert state(a) == want
    monkeypatch.setattr(access_stats, "pause", lambda: None)
    log(a, [(n, T0 + 60_000) for n in dict(want[0])])
    assert access_stats.fold_in_steps(b) > 0  # A gave its claim back


def test_two_folds_running_freely_count_every_access_once(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _, _ = store
    want = expected(path, tmp_path)
    monkeypatch.setattr(access_stats, "STEP_ROWS", 20)
    monkeypatch.setattr(access_stats, "LEASE_SECONDS", 0.0)  # both at work at once
    monkeypatch.setattr(access_stats, "pause", lambda: None)
    conns = [connect(path, timeout=30) for _ in range(2)]
    threads = [threading.Thread(target=access_stats.fold_in_steps, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    access_stats.fold_in_steps(conns[0])  # what a fold that stopped early left
    assert state(conns[0]) == want


def test_a_record_forgotten_during_a_fold_is_dropped(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fold has read the log; before its first step writes, the busiest record (in the
    # first steps: the lowest label) is forgotten in another connection. The step sees it
    # and stops; the next fold drops the record's counters and writes it no history.
    path, nums, seen = store
    victim = nums[0]
    monkeypatch.setattr(access_stats, "STEP_ROWS", 100)
    fk = sqlite3.connect(path, isolation_level=None)
    fk.execute("PRAGMA foreign_keys = ON")

    def hook(n: int) -> None:
        if n == 1:
            fk.execute("DELETE FROM records WHERE num = ?", (victim,))

    on_pause(monkeypatch, hook)
    conn = connect(path)
    assert access_stats.fold_in_steps(conn) == 0
    monkeypatch.setattr(access_stats, "pause", lambda: None)
    access_stats.fold_in_steps(conn)
    history, stats, left = state(conn)
    assert left == 0
    assert victim not in dict(history) and victim not in {row[0] for row in stats}
    del seen[victim]
    assert access_stats.access_times(conn) == {n: bounded(ts) for n, ts in seen.items() if ts}


def _raise(exc: Exception) -> None:
    raise exc


def test_the_store_folds_on_a_thread_of_its_own(
    store: tuple[Path, list[int], Accesses], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The write that finds the log due (and so a flush on a request's path) returns while the
    # fold is at work, and more accesses are written between two of its steps.
    path, nums, _ = store
    want_after = expected(path, tmp_path)
    monkeypatch.setattr(access_stats, "FOLD_AT", 100)
    monkeypatch.setattr(access_stats, "STEP_ROWS", 100)
    held, go = threading.Event(), threading.Event()
    folder: list[str] = []

    def hook(n: int) -> None:
        if n == 2:  # after the fold's first commit
            folder.append(threading.current_thread().name)
            held.set()
            go.wait(60)  # a safety net only: the test sets it

    on_pause(monkeypatch, hook)
    from magray.memory.backends.sqlite.store import Store

    s = Store(path)
    try:
        s.record_accesses([(nums[0], T0 + 70_000)])  # the log is due: a fold starts
        assert held.wait(60)
        s.record_accesses([(nums[1], T0 + 70_001)])  # written while the fold is midway
        assert not s.wait_for_fold(timeout=0)
        go.set()
        assert s.wait_for_fold(timeout=60)
    finally:
        go.set()
        s.close()
    assert folder == ["magray-access-fold"]
    conn = connect(path)
    access_stats.fold_in_steps(conn)
    history = dict(state(conn)[0])
    before = dict(want_after[0])
    assert access_stats.unpack(history[nums[1]])[-1] == T0 + 70_001
    assert {n for n in history if history[n] != before.get(n)} == {nums[0], nums[1]}
