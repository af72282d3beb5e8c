"""How long a fold of the access statistics holds SQLite's write lock; prints JSON.

    .venv/bin/python benchmarks/fold_lock.py --build 100000 /tmp/fl/base     # once
    .venv/bin/python benchmarks/fold_lock.py --home /tmp/fl/base --work /tmp/fl/run [--spin 1]

``--build N HOME`` stores the N synthetic records of ``magray bench memory`` and
``--prefill`` accesses (six per record by default, uniformly at random, in flushes of 3,000),
as a store that has served searches for a while. ``--home`` copies it to ``--work`` and, for
each of ``--rounds`` rounds, appends ``FOLD_AT`` accesses less one flush to the pending log
(uniformly random records) and then writes one flush of ``--per`` accesses through
``Store.record_accesses``, the write that folds the log into the bounded history (what the
background thread of ``Memory`` does once ``FOLD_AT`` accesses are pending).

It reports, per round, the wall time from that write to the end of its fold and the CPU
time of the threads that did it (the writer's, and the store's fold thread where the fold
runs there), how many write transactions they ran and the longest of them (from
``BEGIN IMMEDIATE`` returning to ``COMMIT`` or ``ROLLBACK`` returning, on the connections
the statistics use), and what a writer in another process saw meanwhile:
a loop of ``BEGIN IMMEDIATE``, one small row, ``COMMIT``, 2 ms apart, each timed from asking
for the lock to holding it. ``--spin N`` runs N threads of pure-Python work in the folding
process while it folds (the searches of a server worker competing for the interpreter lock).
Run it with two trees' ``PYTHONPATH`` to compare them on copies of the same store.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import sqlite3
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import access_stats as access_stats_bench  # benchmarks/access_stats.py, beside this file

import magray
from magray.memory.access import FOLD_AT
from magray.memory.backends.sqlite import access_stats
from magray.memory.backends.sqlite.store import Store

DIM = 384
FLUSH = 3000
_BUMP = (
    "INSERT INTO record_stats (num, access_count, last_access_at) VALUES (?2, 1, ?1)"
    " ON CONFLICT (num) DO UPDATE SET access_count = access_count + 1,"
    " last_access_at = excluded.last_access_at"
)


def db_path(home: Path) -> Path:
    return home / "data" / "memory.db"


def build(home: Path, n: int, prefill: int) -> dict[str, Any]:
    """The store of ``benchmarks/access_stats.py``: ``n`` records, ``prefill`` accesses."""
    built = access_stats_bench.build(home, n, prefill)
    assert db_path(home).exists()
    return built


class Timed(sqlite3.Connection):
    """A connection that times each write transaction (``BEGIN IMMEDIATE``) it runs."""

    holds: list[float]
    _began = 0.0

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:  # type: ignore[override]
        cursor = super().execute(sql, *args)
        word = " ".join(sql.split()[:2]).upper()
        if word == "BEGIN IMMEDIATE":
            self._began = time.perf_counter()
        elif word.startswith(("COMMIT", "ROLLBACK")) and self._began:
            self.holds.append(time.perf_counter() - self._began)
            self._began = 0.0
        return cursor


def probe(path: str, stop: Any, out: Any) -> None:
    """Another process's writer: one small write every 2 ms, each wait for the lock timed."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    waits: list[tuple[float, float]] = []
    while not stop.is_set():
        asked = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        waits.append((time.time(), time.perf_counter() - asked))
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('fold_lock_probe', ?)",
            (str(asked),),
        )
        conn.execute("COMMIT")
        time.sleep(0.002)
    conn.close()
    out.put(waits)


def spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(i * i for i in range(2000))


def one_round(store: Store, conn: Timed, nums: list[int], rng: random.Random, per: int,
              spinners: int) -> dict[str, Any]:  # fmt: skip
    now = time.time()
    fill = [(rng.choice(nums), now + i * 1e-3) for i in range(FOLD_AT - per)]
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(_BUMP, [(at, n) for n, at in fill])
    conn.executemany("INSERT INTO access_log (num, at) VALUES (?, ?)", fill)
    conn.execute("COMMIT")
    events = [(rng.choice(nums), now + 20 + i * 1e-3) for i in range(per)]
    ctx = mp.get_context("spawn")
    stop, out = ctx.Event(), ctx.Queue()
    writer = ctx.Process(target=probe, args=(str(store.path), stop, out))
    writer.start()
    time.sleep(1.0)  # the writer is up and writing
    halt = threading.Event()
    threads = [threading.Thread(target=spin, args=(halt,)) for _ in range(spinners)]
    for t in threads:
        t.start()
    conn.holds = []
    folds = getattr(store, "_fold_conn", None)  # a fold on a thread of the store's own
    if isinstance(folds, Timed):
        folds.holds = conn.holds
    started_at = time.time()
    c, w, f = time.thread_time(), time.perf_counter(), folder_cpu(store)
    store.record_accesses(events)
    if hasattr(store, "wait_for_fold"):
        store.wait_for_fold()
    cpu = time.thread_time() - c + folder_cpu(store) - f
    wall = time.perf_counter() - w
    ended_at = time.time()
    halt.set()
    for t in threads:
        t.join()
    time.sleep(0.2)
    stop.set()
    waits: list[tuple[float, float]] = out.get()
    writer.join()
    during = [ms for at, ms in waits if started_at <= at <= ended_at + 0.05]
    left = conn.execute("SELECT COUNT(*) FROM access_log").fetchone()[0]
    return {
        "fold_wall_ms": round(wall * 1000, 1),
        "fold_cpu_ms": round(cpu * 1000, 1),
        "transactions": len(conn.holds),
        "longest_hold_ms": round(max(conn.holds) * 1000, 1),
        "writer_waits_during": len(during),
        "writer_wait_max_ms": round(max(during, default=0.0) * 1000, 1),
        "writer_wait_median_ms": round(statistics.median(during) * 1000, 2) if during else None,
        "log_rows_left": left,
    }


def folder_cpu(store: Store) -> float:
    """CPU time of the store's fold thread so far (0 when it has none)."""
    thread = getattr(store, "_folder", None)
    if thread is None or thread.ident is None:
        return 0.0
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def timed(path: Path) -> Timed:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=0.2, factory=Timed
    )
    assert isinstance(conn, Timed)
    conn.holds = []
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 200")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")  # as Store's statistics connection
    return conn


def measure(base: Path, work: Path, rounds: int, per: int, spinners: int) -> dict[str, Any]:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    store = Store(db_path(work))
    conn = timed(store.path)
    store._stats_conn = conn  # the connections the statistics write through, timed
    store._fold_conn = timed(store.path)  # type: ignore[attr-defined]  # a tree that folds apart
    nums = [int(r[0]) for r in store.conn.execute("SELECT num FROM records")]
    rng = random.Random(3)
    results = [one_round(store, conn, nums, rng, per, spinners) for _ in range(rounds)]
    store.close()
    return {
        "tree": str(Path(magray.__file__).parents[2]),
        "records": len(nums),
        "fold_at": FOLD_AT,
        "spin_threads": spinners,
        "step_rows": getattr(access_stats, "STEP_ROWS", None),
        "rounds": results,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", nargs=2, metavar=("N", "HOME"))
    parser.add_argument("--prefill", type=int, default=600_000)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per", type=int, default=256)
    parser.add_argument("--spin", type=int, default=0)
    parser.add_argument("--step-rows", type=int, help="override access_stats.STEP_ROWS")
    args = parser.parse_args()
    if args.build:
        out = build(Path(args.build[1]), int(args.build[0]), args.prefill)
    elif args.home and args.work:
        if args.step_rows:
            access_stats.STEP_ROWS = args.step_rows
        out = measure(args.home, args.work, args.rounds, args.per, args.spin)
    else:
        parser.error("give --build N HOME, or --home HOME --work DIR")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
