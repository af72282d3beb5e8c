"""``Memory.recall`` per mode on a store built once; prints JSON, with a digest of the hits.

    .venv/bin/python benchmarks/memory_parts.py --build 100000 /tmp/parts/h100k   # once
    .venv/bin/python benchmarks/recall_path.py --home /tmp/parts/h100k
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=cg.out \\
        .venv/bin/python benchmarks/recall_path.py --home COPY --modes vector --passes 0

The 200 queries of ``magray bench memory`` (its data and settings), as the bench runs them:
a new ``Query`` each, access statistics written. For each mode (vector, hybrid, filtered to
one layer) it prints the median wall time and the calling thread's CPU time of each pass,
and ``digest``: a hash of every hit's id and score in the first pass, equal between two
versions exactly when they return the same hits with the same scores in the same order.
Compare versions on copies of one store, alternating; ``--passes 0`` runs only the opening
and warm-up, so the difference of two callgrind runs (``--passes 0`` and ``--passes 2``)
divided by 400 is the instruction count of one recall, independent of the machine's load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from magray.bench.memory import K, TableEmbedder, bench_settings, synthesize
from magray.memory.records import Filters, Layer, Query, SearchMode
from magray.memory.service import Memory

MODES = ("vector", "hybrid", "filtered")


def query(mode: str, text: str) -> Query:
    if mode == "filtered":
        only = Filters(layers=(Layer.ASSETS,))
        return Query(text=text, k=K, mode=SearchMode.VECTOR, filters=only)
    return Query(text=text, k=K, mode=SearchMode(mode), filters=Filters())


def queries(home: Path, n: int) -> tuple[list[str], Any]:
    """The bench's 200 query texts and vectors, kept beside the store after the first run
    (making them means making all ``n`` records' data: seconds, minutes under valgrind)."""
    kept = home / f"recall_path_queries_{n}.npz"
    if kept.exists():
        with np.load(kept) as saved:
            return [str(t) for t in saved["texts"]], saved["vectors"]
    data = synthesize(n, 384, 200)
    np.savez(kept, texts=np.asarray(data.query_texts), vectors=data.query_vectors)
    return list(data.query_texts), data.query_vectors


def measure(home: Path, n: int, modes: list[str], passes: int) -> dict[str, Any]:
    texts, vectors = queries(home, n)
    embedder = TableEmbedder("bench-synthetic-384", 384, dict(zip(texts, vectors, strict=True)))
    out: dict[str, Any] = {"n": n, "load_start": round(os.getloadavg()[0], 2)}
    digest = hashlib.sha256()
    with Memory(bench_settings(home), embedder=embedder) as memory:
        for text in texts[:20]:  # open the index, fill caches
            memory.recall(Query(text=text, k=K, mode=SearchMode.HYBRID))
        for mode in modes:
            walls, cpus = [], []
            for done in range(passes):
                wall, cpu = [], []
                for text in texts:
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    hits = memory.recall(query(mode, text))
                    cpu.append(time.thread_time() - start_cpu)
                    wall.append(time.perf_counter() - start)
                    if done == 0:
                        digest.update(repr([(h.record.id, h.score) for h in hits]).encode())
                walls.append(round(statistics.median(wall) * 1e3, 4))
                cpus.append(round(statistics.median(cpu) * 1e3, 4))
            out[mode] = {"p50_wall_ms": walls, "p50_thread_cpu_ms": cpus}
    out["digest"] = digest.hexdigest()[:16]
    out["load_end"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="a store built by memory_parts")
    parser.add_argument("--n", type=int, default=100_000, help="records the store was built with")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES)
    )
    parser.add_argument(
        "--passes", type=int, default=3, help="passes over the 200 queries per mode"
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    print(json.dumps(measure(args.home, args.n, modes, args.passes)))


if __name__ == "__main__":
    main()
