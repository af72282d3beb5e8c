"""Index libraries' HNSW graphs against raw hnswlib at equal recall.

    .venv/bin/python benchmarks/hnsw_equal_recall.py --n 100000 --cache /tmp/hnsw-graphs
    .venv/bin/python benchmarks/hnsw_equal_recall.py --n 100000 --cache /tmp/hnsw-graphs \
        --variants f32:16,f16:16,faiss/f16:16,faiss/f32:16     # faiss: pip install faiss-cpu

What the vector-stage target of ``magray bench memory`` (within 1.5x of raw hnswlib at equal
recall) asks of the index library alone, with no MAGRAY code around the search. Data:
``magray bench memory``'s clustered vectors and perturbed queries (same generator and
seed), exact top-10 from numpy. hnswlib is built as the bench builds it (float32, cosine,
M 16, ef_construction 128) and searched at the bench's ef: the smallest whose recall@10
reaches 0.99. Each variant (``dtype:M`` for usearch, switched to the inner product as
``VectorIndex`` does; ``faiss/dtype:M`` for faiss's HNSW, which is not a MAGRAY
dependency; both at ef_construction 128 unless ``--expansion-add`` says otherwise) reports
its build time on every core, its file's bytes per vector, recall@10 at each ef, the
smallest ef reaching hnswlib's recall, and at that ef its compiled search (for usearch
``search_many``, the call ``VectorIndex.search_keys`` makes) timed query by query
alternately with ``hnswlib.knn_query``, as the bench times the two side by side (p50 of
``--rounds`` passes over the 200 queries). Built files are kept in ``--cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from magray.bench.memory import exact_topk, recall_at, synthesize

K = 10
EFS = (10, 12, 14, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56, 60, 64)
TARGET = 0.99  # the bench's cap on the recall hnswlib is asked to reach
EF_CONSTRUCTION = 128


def _hnswlib(vectors: np.ndarray, cache: Path) -> tuple[Any, float | None]:
    import hnswlib

    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    path = cache / f"hnswlib_{len(vectors)}.bin"
    if path.exists():
        index.load_index(str(path))
        build_s = None
    else:
        t = time.perf_counter()
        index.init_index(max_elements=len(vectors), M=16, ef_construction=128, random_seed=1)
        index.add_items(vectors, np.arange(len(vectors)))
        build_s = round(time.perf_counter() - t, 1)
        index.save_index(str(path))
    index.set_num_threads(1)
    return index, build_s


def _usearch(
    vectors: np.ndarray, dtype: str, degree: int, cache: Path, expansion_add: int
) -> tuple[Any, Any, dict[str, Any]]:
    from usearch.compiled import MetricKind
    from usearch.index import Index

    index: Any = Index(
        ndim=vectors.shape[1],
        metric="cos",
        dtype=dtype,
        connectivity=degree,
        expansion_add=expansion_add,
    )
    built = "" if expansion_add == EF_CONSTRUCTION else f"_efc{expansion_add}"
    path = cache / f"usearch_{len(vectors)}_{dtype}_{degree}{built}.usearch"
    info: dict[str, Any] = {}
    if path.exists():
        index.load(str(path))
    else:
        t = time.perf_counter()
        index.add(np.arange(len(vectors)), vectors, threads=os.cpu_count() or 1)
        info["build_s"] = round(time.perf_counter() - t, 1)
        index.save(str(path))
    info["file_bytes_per_vector"] = round(path.stat().st_size / len(vectors), 1)
    index.metric = MetricKind.IP  # unit vectors: what VectorIndex does
    search_many = index._compiled.search_many

    def search(row: np.ndarray) -> Any:
        return search_many(row, count=K, exact=False, threads=1)[0][0]

    def set_ef(ef: int) -> None:
        index.expansion_search = ef

    return search, set_ef, info


def _faiss(
    vectors: np.ndarray, dtype: str, degree: int, cache: Path, expansion_add: int
) -> tuple[Any, Any, dict[str, Any]]:
    """faiss's HNSW (``pip install faiss-cpu``; not a MAGRAY dependency): float32 vectors
    (``IndexHNSWFlat``) or float16 ones (``IndexHNSWSQ``, QT_fp16), inner product."""
    import faiss  # type: ignore[import-not-found]

    path = cache / f"faiss_{len(vectors)}_{dtype}_{degree}_efc{expansion_add}.index"
    info: dict[str, Any] = {}
    if path.exists():
        index = faiss.read_index(str(path))
    else:
        ip = faiss.METRIC_INNER_PRODUCT
        if dtype == "f16":
            index = faiss.IndexHNSWSQ(vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, degree, ip)
        elif dtype == "f32":
            index = faiss.IndexHNSWFlat(vectors.shape[1], degree, ip)
        else:
            raise SystemExit(f"faiss variants are f16 or f32, not {dtype}")
        index.hnsw.efConstruction = expansion_add
        t = time.perf_counter()
        index.train(vectors[:1000])
        index.add(vectors)
        info["build_s"] = round(time.perf_counter() - t, 1)
        faiss.write_index(index, str(path))
    info["file_bytes_per_vector"] = round(path.stat().st_size / len(vectors), 1)
    faiss.omp_set_num_threads(1)
    params = [faiss.SearchParametersHNSW(efSearch=16)]

    def search(row: np.ndarray) -> Any:
        return index.search(row, K, params=params[0])[1][0]

    def set_ef(ef: int) -> None:
        params[0] = faiss.SearchParametersHNSW(efSearch=ef)

    return search, set_ef, info


def _curve(
    search: Any, set_ef: Any, queries: np.ndarray, truth: list[list[int]]
) -> dict[int, float]:
    out: dict[int, float] = {}
    for ef in EFS:
        set_ef(ef)
        found = [[int(x) for x in search(q)] for q in queries]
        out[ef] = recall_at(found, truth)
    return out


def _first(curve: dict[int, float], target: float) -> int | None:
    return next((ef for ef in EFS if curve[ef] >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--variants", default="f16:16,bf16:16,f16:24,bf16:24,f16:32,bf16:32")
    parser.add_argument(
        "--expansion-add",
        type=int,
        default=EF_CONSTRUCTION,
        help="usearch's ef_construction (hnswlib keeps 128, as the bench builds it)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes over the 200 queries")
    parser.add_argument("--cache", type=Path, required=True, help="folder for the built files")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    data = synthesize(args.n, args.dim)
    queries = data.query_vectors
    truth = exact_topk(data.vectors, queries, K)
    hnsw, hnsw_build = _hnswlib(data.vectors, args.cache)
    base_curve = _curve(lambda q: hnsw.knn_query(q, k=K)[0][0], hnsw.set_ef, queries, truth)
    base_ef = _first(base_curve, TARGET) or EFS[-1]
    target = base_curve[base_ef]
    report: dict[str, Any] = {
        "n": args.n,
        "usearch_expansion_add": args.expansion_add,
        "load_start": round(os.getloadavg()[0], 2),
        "hnswlib": {
            "ef": base_ef,
            "recall_at_10": target,
            "build_s": hnsw_build,
            "recall_by_ef": base_curve,
        },
        "variants": {},
    }
    for spec in args.variants.split(","):
        library, _, rest = spec.rpartition("/")
        dtype, degree = rest.split(":")
        build = _faiss if library == "faiss" else _usearch
        search, set_ef, info = build(
            data.vectors, dtype, int(degree), args.cache, args.expansion_add
        )
        curve = _curve(lambda q, search=search: search(q.reshape(1, -1)), set_ef, queries, truth)
        ef = _first(curve, target)
        row: dict[str, Any] = {**info, "recall_by_ef": curve, "equal_recall_ef": ef}
        if ef is not None:
            set_ef(ef)
            hnsw.set_ef(base_ef)
            ours: list[float] = []
            theirs: list[float] = []
            for _ in range(args.rounds):
                for q in queries:
                    row_q = q.reshape(1, -1)
                    t = time.perf_counter()
                    search(row_q)
                    ours.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    hnsw.knn_query(q, k=K)
                    theirs.append(time.perf_counter() - t)
            mine, base = float(np.median(ours)), float(np.median(theirs))
            row["p50_ms"] = round(mine * 1e3, 4)
            row["hnswlib_p50_ms"] = round(base * 1e3, 4)
            row["vs_hnswlib"] = round(mine / base, 2)
        report["variants"][spec] = row
        del search, set_ef
    report["load_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
