"""Where a hybrid recall and a bulk add spend their CPU time; prints JSON.

    .venv/bin/python benchmarks/memory_parts.py --build 100000 /tmp/parts/h100k   # once
    .venv/bin/python benchmarks/memory_parts.py --home /tmp/parts/h100k

``--build N HOME`` stores the N synthetic records of ``magray bench memory`` through
``Memory.remember_many`` (batches of 1,000) and reports the CPU seconds of the adds alone
(SQLite, keyword index, Python) apart from the vector-index sync that follows. ``--home``
measures, on that store, the median thread CPU time (best of three passes over 200
queries) of the whole ``Memory.recall`` per mode, filtered to one layer, of the vector
stage (``Memory.vector_candidates``, top 10) and of the recall's parts: the vector pool and the
keyword search at the fusion depth, fusion, and reading the ten hits. CPU time is what a
shared machine inflates least: compare two versions on copies of one store, alternating.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magray.bench.memory import BATCH, K, TableEmbedder, bench_settings, synthesize
from magray.memory.backends.base import Candidate
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.search.fusion import fuse_convex
from magray.memory.search.keywords import NORM_DEPTH, keyword_terms
from magray.memory.search.recall import hydrate
from magray.memory.search.vectors import vector_pool
from magray.memory.service import Memory


def build(n: int, home: Path) -> dict[str, Any]:
    data = synthesize(n, 384, 200)
    table = dict(zip(data.texts, data.vectors, strict=True))
    embedder = TableEmbedder("bench-synthetic-384", 384, table)
    pairs = zip(data.texts, data.layers, strict=True)
    items = [NewRecord(text=text, layer=layer, kind="note") for text, layer in pairs]
    home.mkdir(parents=True, exist_ok=True)
    with Memory(bench_settings(home), embedder=embedder) as memory:
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, n, BATCH):
            memory.remember_many(items[start : start + BATCH])
        add = (time.perf_counter() - wall, time.process_time() - cpu)
        memory.sync_indexes()
        total = (time.perf_counter() - wall, time.process_time() - cpu)
    return {
        "n": n,
        "add_wall_s": round(add[0], 2),
        "add_cpu_s": round(add[1], 2),
        "add_and_sync_wall_s": round(total[0], 2),
        "add_and_sync_cpu_s": round(total[1], 2),
    }


def measure(n: int, home: Path) -> dict[str, Any]:
    data = synthesize(n, 384, 200)
    embedder = TableEmbedder(
        "bench-synthetic-384", 384, dict(zip(data.query_texts, data.query_vectors, strict=True))
    )
    memory = Memory(bench_settings(home), embedder=embedder)
    backend = memory.backend
    layers = tuple(Layer)
    qv = data.query_vectors

    def cpu_ms(fn: Callable[[int], object]) -> float:
        passes = []
        for _ in range(3):
            times = []
            for i in range(len(data.query_texts)):
                start = time.thread_time()
                fn(i)
                times.append(time.thread_time() - start)
            passes.append(statistics.median(times) * 1e3)
        return round(min(passes), 3)

    def recall(mode: SearchMode) -> Callable[[int], object]:
        return lambda i: memory.recall(Query(text=data.query_texts[i], k=K, mode=mode))

    for i in range(30):
        recall(SearchMode.HYBRID)(i)
    out: dict[str, Any] = {"n": n}
    for mode in SearchMode:
        out[f"{mode}_ms"] = cpu_ms(recall(mode))
    assets = Filters(layers=(Layer.ASSETS,))
    out["filtered_ms"] = cpu_ms(
        lambda i: memory.recall(
            Query(text=data.query_texts[i], k=K, mode=SearchMode.VECTOR, filters=assets)
        )
    )
    out["vector_stage_ms"] = cpu_ms(lambda i: memory.vector_candidates(qv[i], K, Filters(), layers))
    pools = [vector_pool(backend, qv[i], layers, NORM_DEPTH, Filters()) for i in range(200)]
    words = [keyword_terms(text) for text in data.query_texts]
    hits = [backend.keyword_search(words[i], Filters(), NORM_DEPTH) for i in range(200)]
    out["vector_pool_ms"] = cpu_ms(
        lambda i: vector_pool(backend, qv[i], layers, NORM_DEPTH, Filters())
    )
    out["keyword_search_ms"] = cpu_ms(
        lambda i: backend.keyword_search(words[i], Filters(), NORM_DEPTH)
    )
    params = memory.fusion_params()

    def fusion(i: int) -> list[Any]:
        cands = {num: Candidate(num, layer, 0.0) for num, _, layer in pools[i]}
        cands.update({h.num: Candidate(h.num, h.layer, h.created_at) for h in hits[i]})
        vector = [(num, sim) for num, sim, _ in pools[i]]
        keyword = [(h.num, h.score) for h in hits[i]]
        return fuse_convex(vector, keyword, cands, params, time.time(), 4 * K)

    out["fusion_ms"] = cpu_ms(fusion)
    fused = [fusion(i) for i in range(200)]
    out["hydrate_ms"] = cpu_ms(lambda i: hydrate(backend, fused[i], K, Filters(), explain=False))
    memory.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", nargs=2, metavar=("N", "HOME"))
    parser.add_argument("--home", type=Path)
    parser.add_argument("--n", type=int, default=100_000, help="records the store was built with")
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build(int(args.build[0]), Path(args.build[1]))))
    elif args.home:
        print(json.dumps(measure(args.n, args.home)))
    else:
        parser.error("give --build N HOME or --home HOME")


if __name__ == "__main__":
    main()
