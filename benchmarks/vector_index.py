"""HNSW libraries for MAGRAY's derived vector index, side by side; prints JSON.

    .venv/bin/python benchmarks/vector_index.py                  # N = 10K
    .venv/bin/python benchmarks/vector_index.py --n 10000 100000 # adds N = 100K (~100 CPU-s/build)
    .venv/bin/python benchmarks/vector_index.py --only magray    # just the shipped VectorIndex

Data: N random unit vectors of dimension 384 (seeded), 200 random unit queries; the
ground truth is exact top-10 by numpy. Everything runs on one thread. Random vectors
are the hard case for HNSW (real embeddings cluster and recall higher at the same ef).

For every configuration the benchmark builds once, then sweeps the search expansion
(ef) and reports, per ef, recall@10 and single-query p50/p95 latency; ``best`` is the
smallest ef with recall@10 >= 0.95. It also reports build seconds, bytes per vector of
the saved file and the open time (hnswlib load; usearch load and memory-mapped view).

The named baseline is hnswlib (M=16, ef_construction=128). The ``magray`` rows use
``magray.memory.vector_index.VectorIndex`` as shipped (automatic ef, i8 rescored in f32
with ``candidates(k)``), so the table shows what callers get.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

DIM = 384
K = 10
EFS = (16, 32, 64, 96, 128, 192, 256, 384, 512)
TARGET = 0.95

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def unit(rng: np.random.Generator, n: int, kind: str) -> F32:
    """``uniform``: isotropic random unit vectors (the worst case: every neighbour is
    almost as far as any other). ``latent``: a 64-d Gaussian latent mapped linearly into
    384-d plus isotropic noise (SNR 4): low intrinsic dimension, like text embeddings."""
    if kind == "uniform":
        x = rng.standard_normal((n, DIM), dtype=np.float32)
    else:
        mix = np.random.default_rng(7).standard_normal((64, DIM)).astype(np.float32) / 8
        z = rng.standard_normal((n, 64), dtype=np.float32)
        x = z @ mix + 0.5 * rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_topk(data: F32, queries: F32, k: int) -> I64:
    sims = queries @ data.T
    part = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def recall(found: list[I64], truth: I64) -> float:
    hits = sum(
        len(set(f[:K].tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True)
    )
    return hits / truth.size


def latency(search: Callable[[F32], I64], queries: F32) -> tuple[list[I64], float, float]:
    found: list[I64] = []
    times: list[float] = []
    for q in queries:
        t = time.perf_counter()
        found.append(search(q))
        times.append(time.perf_counter() - t)
    ms = np.asarray(times) * 1000
    return found, float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def sweep(
    set_ef: Callable[[int], None], search: Callable[[F32], I64], queries: F32, truth: I64
) -> dict[str, Any]:
    rows = []
    for ef in EFS:
        set_ef(ef)
        found, p50, p95 = latency(search, queries)
        rows.append(
            {"ef": ef, "recall@10": round(recall(found, truth), 4), "p50_ms": p50, "p95_ms": p95}
        )
    good = [r for r in rows if r["recall@10"] >= TARGET]
    return {"sweep": rows, "best": good[0] if good else None}


def bench_hnswlib(data: F32, queries: F32, truth: I64, tmp: Path) -> dict[str, Any]:
    import hnswlib

    n = len(data)
    t = time.perf_counter()
    index = hnswlib.Index(space="ip", dim=DIM)
    index.init_index(max_elements=n, M=16, ef_construction=128)
    index.set_num_threads(1)
    index.add_items(data, np.arange(n))
    build = time.perf_counter() - t
    path = tmp / "h.bin"
    index.save_index(str(path))
    t = time.perf_counter()
    loaded = hnswlib.Index(space="ip", dim=DIM)
    loaded.load_index(str(path), max_elements=n)
    open_s = time.perf_counter() - t

    def search(q: F32) -> I64:
        labels, _ = index.knn_query(q, k=K)
        return np.asarray(labels[0], dtype=np.int64)

    out = {"library": "hnswlib", "dtype": "f32", "M": 16, "ef_construction": 128}
    out.update(build_s=build, bytes_per_vector=path.stat().st_size / n, open_ms=open_s * 1000)
    out.update(sweep(index.set_ef, search, queries, truth))
    return out


def bench_usearch(data: F32, queries: F32, truth: I64, tmp: Path, dtype: str) -> dict[str, Any]:
    from usearch.index import Index

    n = len(data)
    t = time.perf_counter()
    index = Index(ndim=DIM, metric="cos", dtype=dtype, connectivity=16, expansion_add=128)
    index.add(np.arange(n, dtype=np.uint64), data, threads=1)
    build = time.perf_counter() - t
    path = tmp / f"u.{dtype}.usearch"
    index.save(str(path))
    t = time.perf_counter()
    Index.restore(str(path))
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    Index.restore(str(path), view=True)
    view_s = time.perf_counter() - t

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    def search(q: F32) -> I64:
        return np.asarray(index.search(q, K, threads=1).keys, dtype=np.int64)

    out: dict[str, Any] = {"library": "usearch", "dtype": dtype, "connectivity": 16}
    out.update(expansion_add=128, build_s=build, bytes_per_vector=path.stat().st_size / n)
    out.update(open_ms=load_s * 1000, view_ms=view_s * 1000)
    out.update(sweep(set_ef, search, queries, truth))
    return out


def bench_magray(data: F32, queries: F32, truth: I64, tmp: Path, dtype: str) -> dict[str, Any]:
    from magray.memory.backends.sqlite.vector_index import VectorIndex

    n = len(data)
    path = tmp / f"m.{dtype}.usearch"
    t = time.perf_counter()
    index = VectorIndex.create(path, model_id="bench", dim=DIM, dtype=dtype)
    index.add(np.arange(n, dtype=np.int64), data)
    build = time.perf_counter() - t
    index.save()
    opens = []
    for verify in (True, False):
        t = time.perf_counter()
        VectorIndex.open(
            path, model_id="bench", dim=DIM, dtype=dtype, writable=False, verify=verify
        )
        opens.append((time.perf_counter() - t) * 1000)
    view = VectorIndex.open(path, model_id="bench", dim=DIM, dtype=dtype, writable=False)
    fetch = view.candidates(K)

    def search(q: F32) -> I64:
        labels, _ = view.search(q, fetch)[0]
        if fetch > K:  # rescore the over-fetched candidates with exact f32 vectors
            labels = labels[np.argsort(-(data[labels] @ q), kind="stable")[:K]]
        return labels[:K]

    found, p50, p95 = latency(search, queries)
    out: dict[str, Any] = {"library": "magray", "dtype": dtype, "ef": view.expansion_search}
    out.update(candidates=fetch, build_s=build, bytes_per_vector=path.stat().st_size / n)
    out.update(open_verified_ms=opens[0], open_unverified_ms=opens[1])
    out.update({"recall@10": round(recall(found, truth), 4), "p50_ms": p50, "p95_ms": p95})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", choices=("all", "libs", "magray"), default="all")
    parser.add_argument("--data", nargs="+", choices=("uniform", "latent"), default=["latent"])
    parser.add_argument("--libs", nargs="+", default=["hnswlib", "f32", "f16", "i8"])
    parser.add_argument("--dtypes", nargs="+", default=["f32", "f16", "i8"])
    args = parser.parse_args(argv)
    results = []
    for n, kind in itertools.product(args.n, args.data):
        rng = np.random.default_rng(42)
        data, queries = unit(rng, n, kind), unit(rng, args.queries, kind)
        truth = exact_topk(data, queries, K)
        t = time.perf_counter()
        for q in queries[:50]:
            np.argpartition(-(data @ q), K)[:K]
        exact_ms = (time.perf_counter() - t) / 50 * 1000
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            if args.only in ("all", "libs"):
                if "hnswlib" in args.libs:
                    rows.append(bench_hnswlib(data, queries, truth, Path(tmp)))
                    print(json.dumps(rows[-1]), file=sys.stderr)
                for dtype in [d for d in args.libs if d != "hnswlib"]:
                    rows.append(bench_usearch(data, queries, truth, Path(tmp), dtype))
                    print(json.dumps(rows[-1]), file=sys.stderr)
            if args.only in ("all", "magray"):
                for dtype in args.dtypes:
                    rows.append(bench_magray(data, queries, truth, Path(tmp), dtype))
                    print(json.dumps(rows[-1]), file=sys.stderr)
        results.append({"n": n, "data": kind, "dim": DIM, "numpy_exact_ms": exact_ms, "rows": rows})
    print(json.dumps({"benchmark": "vector_index", "threads": 1, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
