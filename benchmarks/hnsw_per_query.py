"""usearch (as MAGRAY opens it) against raw hnswlib, query by query at equal ef; prints JSON.

    .venv/bin/python benchmarks/hnsw_per_query.py --n 100000            # ~5 CPU-minutes of builds

Data: ``magray bench memory``'s clustered vectors (same generator and seed) and its
perturbed queries; the ground truth is numpy's exact top-10. Three indexes of the same
vectors, each built with M 16 and ef_construction 128: hnswlib (float32, cosine), usearch
f16 and usearch f32, both switched to the inner product as MAGRAY's ``VectorIndex`` does.
For each ef the three are timed one query after the other (the order rotating), so load on
a shared machine hits all of them alike; each reports the p50 of usearch's compiled
``search_many`` (the call ``VectorIndex.search_keys`` makes) or of ``hnswlib.knn_query``,
recall@10 and, for usearch, the distances computed per query.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from magray.bench.memory import exact_topk, synthesize

K = 10
EFS = (16, 24, 32, 48, 64)


def _hnswlib(vectors: np.ndarray) -> Any:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=16, ef_construction=128, random_seed=1)
    index.add_items(vectors, np.arange(len(vectors)))
    index.set_num_threads(1)
    return index


def _usearch(vectors: np.ndarray, dtype: str) -> Any:
    from usearch.compiled import MetricKind
    from usearch.index import Index

    index = Index(
        ndim=vectors.shape[1], metric="cos", dtype=dtype, connectivity=16, expansion_add=128
    )
    index.add(np.arange(len(vectors)), vectors, threads=os.cpu_count() or 1)
    index.metric = MetricKind.IP  # unit vectors: what VectorIndex does for f32 and f16
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 200 queries")
    args = parser.parse_args()
    data = synthesize(args.n, args.dim)
    truth = exact_topk(data.vectors, data.query_vectors, K)
    hnsw = _hnswlib(data.vectors)
    usearch = {dtype: _usearch(data.vectors, dtype) for dtype in ("f16", "f32")}
    queries = data.query_vectors
    rows = []
    for ef in EFS:
        hnsw.set_ef(ef)
        for index in usearch.values():
            index.expansion_search = ef

        def hnswlib_search(at: int) -> list[int]:
            labels: list[int] = hnsw.knn_query(queries[at], k=K)[0][0].tolist()
            return labels

        def usearch_search(dtype: str) -> Any:
            search_many = usearch[dtype]._compiled.search_many

            def run(at: int) -> list[int]:
                one = queries[at : at + 1]
                keys, _, counts = search_many(one, count=K, exact=False, threads=1)[:3]
                labels: list[int] = keys[0, : counts[0]].tolist()
                return labels

            return run

        fns = {
            "hnswlib": hnswlib_search,
            "usearch_f16": usearch_search("f16"),
            "usearch_f32": usearch_search("f32"),
        }
        times: dict[str, list[float]] = {name: [] for name in fns}
        found: dict[str, list[list[int]]] = {name: [] for name in fns}
        names = list(fns)
        for r in range(args.rounds):
            for i in range(len(queries)):
                shift = (i + r) % len(names)
                for name in names[shift:] + names[:shift]:
                    t = time.perf_counter()
                    labels = fns[name](i)
                    times[name].append(time.perf_counter() - t)
                    if r == 0:
                        found[name].append(labels)
        row: dict[str, Any] = {"ef": ef}
        for name in names:
            hits = sum(len(set(f) & set(t)) for f, t in zip(found[name], truth, strict=True))
            row[f"{name}_p50_ms"] = round(float(np.median(times[name])) * 1000, 4)
            row[f"{name}_recall_at_10"] = round(hits / (K * len(truth)), 4)
        for dtype, index in usearch.items():
            matches = index.search(queries, K, threads=1)
            row[f"usearch_{dtype}_distances_per_query"] = round(
                matches.computed_distances / len(queries)
            )
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(json.dumps({"n": args.n, "dim": args.dim, "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
