"""Cold start of the CLI: whole `magray` processes, best and median of N runs; prints JSON.

    .venv/bin/python benchmarks/cold_start.py --build 10000 /tmp/cold/h10k   # once
    .venv/bin/python benchmarks/cold_start.py --home /tmp/cold/h10k --runs 9

``--build N HOME`` makes a home whose store holds N synthetic records (the clustered
vectors of ``magray bench memory``) labelled with the default embedding model, so that
``memory search`` runs its real path: the model loads and embeds the query, the store and
its indexes open, recall runs. Each search asks a new query (the embedding cache never
answers). Figures per command: ``best_s`` and ``median_s`` (wall clock) and ``cpu_s``
(median user + system time, which a busy machine inflates less than wall time), plus the
load average after each command: on a shared machine report it with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (
    ["--help"],
    ["config", "show"],
    ["llm", "list"],
    ["tasks", "list"],
    ["policy", "show"],
    ["memory", "search", "staging {i}", "-k", "5"],
)


def build(n: int, home: Path) -> None:
    """A home with ``n`` synthetic records labelled with the default model."""
    os.environ["MAGRAY_HOME"] = str(home)
    from magray.bench.memory import TableEmbedder, synthesize
    from magray.config import load_settings
    from magray.embed import load_embedder
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory

    settings = load_settings()
    real = load_embedder(settings)
    data = synthesize(n, real.dim, 10)
    table = dict(zip(data.texts, data.vectors, strict=True))
    embedder = TableEmbedder(real.model_id, real.dim, table)
    items = [
        NewRecord(text=t, layer=layer, kind="note")
        for t, layer in zip(data.texts, data.layers, strict=True)
    ]
    with Memory(settings, embedder=embedder) as memory:
        for start in range(0, n, 1000):
            memory.remember_many(items[start : start + 1000])
        memory.sync_indexes()


def measure(argv: list[str], runs: int, env: dict[str, str]) -> dict[str, object]:
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(runs + 1):  # the first run writes bytecode and fills the page cache
        args = [sys.executable, "-m", "magray", *(a.format(i=time.time_ns()) for a in argv)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if i:
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return {
        "command": "magray " + " ".join(argv),
        "best_s": round(min(walls), 3),
        "median_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "load_average": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", nargs=2, metavar=("N", "HOME"), help="make a store first")
    parser.add_argument("--home", type=Path, help="MAGRAY_HOME to measure in")
    parser.add_argument("--runs", type=int, default=9, help="runs per command")
    args = parser.parse_args(argv)
    if args.build:
        build(int(args.build[0]), Path(args.build[1]))
        return 0
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if args.home is not None:
        env["MAGRAY_HOME"] = str(args.home)
    print(json.dumps([measure(list(c), args.runs, env) for c in COMMANDS], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
