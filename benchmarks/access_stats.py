"""CPU of writing the access statistics of recalled hits on a large store; prints JSON.

    .venv/bin/python benchmarks/access_stats.py --build 100000 /tmp/acc/base   # once
    .venv/bin/python benchmarks/access_stats.py --home /tmp/acc/base --work /tmp/acc/run

``--build N HOME`` stores the N synthetic records of ``magray bench memory`` through
``Memory.remember_many`` and then ``--prefill`` accesses (default 600,000, six per record,
uniformly at random, in flushes of 3,000), as a store that has served searches for a while.
``--home`` copies that store to ``--work`` (opening the copy upgrades an older store's
schema, outside the timing) and times ``--flushes`` writes of ``--per`` accesses to
uniformly random records (``Backend.record_accesses``, what the background thread of
``Memory`` does): the thread CPU time of each, median and mean (the mean includes the folds
of the access log into the bounded history), per access, and the load average. Build the
store with the older version to compare two versions on copies of the same store.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from magray.bench.memory import BATCH, TableEmbedder, bench_settings, synthesize
from magray.memory.records import NewRecord
from magray.memory.service import Memory

DIM = 384
FLUSH = 3000


def build(home: Path, n: int, prefill: int) -> dict[str, Any]:
    data = synthesize(n, DIM, 10)
    table = dict(zip(data.texts, data.vectors, strict=True))
    embedder = TableEmbedder(f"bench-synthetic-{DIM}", DIM, table)
    items = [
        NewRecord(text=t, layer=layer, kind="note")
        for t, layer in zip(data.texts, data.layers, strict=True)
    ]
    with Memory(bench_settings(home), embedder=embedder) as memory:
        for start in range(0, n, BATCH):
            memory.remember_many(items[start : start + BATCH])
        memory.sync_indexes()
        nums = [r.num for r in memory.backend.iter_records()]
        rng = random.Random(1)
        first = time.time() - 3 * 86400
        for f in range(prefill // FLUSH):
            events = [(rng.choice(nums), first + f) for _ in range(FLUSH)]
            memory.backend.record_accesses(events)
    return {"built": str(home), "n": n, "prefill": prefill}


def measure(base: Path, work: Path, flushes: int, per: int) -> dict[str, Any]:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(base, work)
    embedder = TableEmbedder(f"bench-synthetic-{DIM}", DIM, {})
    started = time.perf_counter()
    memory = Memory(bench_settings(work), embedder=embedder)
    open_s = time.perf_counter() - started
    nums = [r.num for r in memory.backend.iter_records()]
    rng = random.Random(2)
    cpu: list[float] = []
    wall: list[float] = []
    now = time.time()
    for f in range(flushes):
        events = [(rng.choice(nums), now + f) for _ in range(per)]
        c, w = time.thread_time(), time.perf_counter()
        memory.backend.record_accesses(events)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - w) * 1000)
    memory.close()
    return {
        "records": len(nums),
        "flushes": flushes,
        "accesses_per_flush": per,
        "open_s": round(open_s, 2),
        "cpu_ms_per_flush_median": round(statistics.median(cpu), 1),
        "cpu_ms_per_flush_mean": round(statistics.mean(cpu), 1),
        "cpu_us_per_access_mean": round(statistics.mean(cpu) * 1000 / per, 1),
        "wall_ms_per_flush_median": round(statistics.median(wall), 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", nargs=2, metavar=("N", "HOME"))
    parser.add_argument("--prefill", type=int, default=600_000)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--flushes", type=int, default=30)
    parser.add_argument("--per", type=int, default=FLUSH)
    args = parser.parse_args()
    if args.build:
        out = build(Path(args.build[1]), int(args.build[0]), args.prefill)
    elif args.home and args.work:
        out = measure(args.home, args.work, args.flushes, args.per)
    else:
        parser.error("give --build N HOME, or --home HOME --work DIR")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
