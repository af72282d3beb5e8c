"""What a store made with the default settings costs: vector recall time and bytes; JSON.

    PYTHONPATH=src .venv/bin/python benchmarks/default_store.py --n 20000 --runs 3

Builds a store of N synthetic records (the data of ``magray bench memory``: 384-d clustered
unit vectors, Zipf-worded notes, layers in turn) through the public ``Memory`` API in a
fresh ``MAGRAY_HOME`` with **no setting changed** (any ``MAGRAY_*`` setting in the
environment is refused), ``remember_many`` in batches of 1,000, then ``sync_indexes``.
Reports the index type the store got, the index file's bytes and every file of the data
folder, and per run (each one pass over the queries, after a warm-up): p50/p99 and
recall@10 of the vector stage (``Memory.vector_candidates``, top 10, against numpy's exact
top 10) and p50 of a whole ``Memory.recall`` in vector mode (query embedding excluded).

The named baseline is the previous version's default: run the same file with
``PYTHONPATH`` on that version's ``src`` (``--label``), alternating with this one, since
the two cannot share one process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

import numpy as np

from magray.bench.memory import (
    BATCH,
    K,
    TableEmbedder,
    dir_bytes,
    exact_topk,
    percentiles,
    recall_at,
    synthesize,
)
from magray.config import load_settings
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory

DIM = 384


def measure(n: int, runs: int, queries: int) -> dict[str, Any]:
    data = synthesize(n, DIM, queries)
    table = dict(zip(data.texts, data.vectors, strict=True))
    table.update(zip(data.query_texts, data.query_vectors, strict=True))
    embedder = TableEmbedder(f"bench-synthetic-{DIM}", DIM, table)
    truth = exact_topk(data.vectors, data.query_vectors, K)
    items = [
        NewRecord(text=t, layer=layer, kind="note")
        for t, layer in zip(data.texts, data.layers, strict=True)
    ]
    out: dict[str, Any] = {"n": n, "dim": DIM, "queries": queries, "k": K}
    with tempfile.TemporaryDirectory(prefix="magray-default-store-") as tmp:
        os.environ["MAGRAY_HOME"] = tmp
        settings = load_settings()
        out["setting"] = settings.memory.vector_dtype
        with Memory(settings, embedder=embedder) as memory:
            t = time.perf_counter()
            for start in range(0, n, BATCH):
                memory.remember_many(items[start : start + BATCH])
            memory.sync_indexes()
            out["ingest_s"] = round(time.perf_counter() - t, 2)
            out["index_dtype"] = memory.backend.vector_dtype
        index_files = sorted(settings.paths.index_dir.glob("vectors.*.usearch"))
        out["index_file"] = [p.name for p in index_files]
        out["index_bytes"] = sum(p.stat().st_size for p in index_files)
        out["data_dir_bytes"] = dir_bytes(settings.paths.data_dir)
        with Memory(settings, embedder=embedder) as memory:
            index_of = {text: i for i, text in enumerate(data.texts)}
            label_of = {r.num: index_of[r.record.text] for r in memory.backend.iter_records()}
            layers = tuple(Layer)

            def vector_stage(i: int) -> list[int]:
                pairs = memory.vector_candidates(data.query_vectors[i], K, Filters(), layers)
                return [label_of[label] for label, _ in pairs[:K]]

            def recall(i: int) -> None:
                query = Query(text=data.query_texts[i], k=K, mode=SearchMode.VECTOR)
                memory.recall(query)

            for i in range(min(20, queries)):  # warm up: open the index, fill caches
                vector_stage(i)
                recall(i)
            out["runs"] = []
            for _ in range(runs):
                found, stage_times, recall_times = [], [], []
                for i in range(queries):
                    t = time.perf_counter()
                    found.append(vector_stage(i))
                    stage_times.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    recall(i)
                    recall_times.append(time.perf_counter() - t)
                p50, p99 = percentiles(stage_times)
                out["runs"].append(
                    {
                        "vector_p50_ms": p50,
                        "vector_p99_ms": p99,
                        "vector_recall_at_10": recall_at(found, truth),
                        "recall_vector_mode_p50_ms": percentiles(recall_times)[0],
                    }
                )
    out["vector_p50_ms"] = float(np.median([r["vector_p50_ms"] for r in out["runs"]]))
    out["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--label", default="this version")
    args = parser.parse_args()
    setting = [k for k in os.environ if k.startswith("MAGRAY_") and k != "MAGRAY_MODELS_DIR"]
    if setting:
        sys.exit(f"error: unset {', '.join(sorted(setting))}: this measures the defaults.")
    report = {"label": args.label, **measure(args.n, args.runs, args.queries)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
