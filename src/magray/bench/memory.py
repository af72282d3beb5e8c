"""`magray bench memory`: the recall path on synthetic vectors, against raw hnswlib and numpy.

A store of N synthetic records is built through the public ``Memory`` API with an embedder
seam (:class:`TableEmbedder`) that returns precomputed vectors, so no model runs and the
figures are the memory's own. Vectors are clustered unit vectors (cluster centres plus
noise, like sentence embeddings of related notes); texts are short notes whose words are
drawn per cluster from a Zipf vocabulary, so BM25 has real work to do. Records are spread
evenly over the three layers. Queries are perturbed copies of stored vectors; the ground
truth is numpy's exact top-10.

Every figure comes from the same run: the named baseline is raw hnswlib (M 16,
ef_construction 128, the smallest ef whose recall@10 reaches MAGRAY's, capped at 0.99),
plus numpy exact search; then MAGRAY's vector stage again at the smallest expansion whose
recall@10 reaches hnswlib's (``vector_equal_recall_*``, ``vector_vs_hnswlib_equal_recall``):
the two at equal recall. Layer weights are 1 and the recency boost is off, so fusion keeps
the cosine order and recall@10 measures retrieval, not ranking preferences.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.config import Settings, load_settings
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode

F32 = npt.NDArray[np.float32]
K = 10
QUERIES = 200
WORDS_PER_TEXT = 12
VOCAB = 20_000
# Expansions tried for the equal-recall pair: fine steps where recall@10 crosses 0.99 on
# this data (a step from 32 straight to 48 would time one side at half again its need).
EFS = (16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64, 96, 128, 192, 256, 384, 512)
INTERLEAVED_ROUNDS = 3  # passes over the queries when the two are timed side by side
BATCH = 1000
LATENT = 24


class TableEmbedder:
    """An embedder seam that returns precomputed vectors for known texts."""

    def __init__(self, model_id: str, dim: int, table: dict[str, F32]) -> None:
        self._model_id = model_id
        self._dim = dim
        self.table = table

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> F32:
        return np.vstack([self.table[t] for t in texts]).astype(np.float32, copy=False)

    def embed_queries(self, texts: Sequence[str]) -> F32:
        if len(texts) == 1:  # a recall's one query: a lookup, not a copy
            one: F32 = self.table[texts[0]].reshape(1, -1)
            return one
        return self.embed_documents(texts)

    def cached_queries(self, texts: Sequence[str]) -> F32 | None:
        """Every vector of the table is a cached one (the embedding cache's best case)."""
        if not texts or any(t not in self.table for t in texts):
            return None
        return self.embed_documents(texts)


@dataclass(frozen=True, slots=True)
class Data:
    texts: list[str]
    vectors: F32
    layers: list[Layer]
    query_texts: list[str]
    query_vectors: F32


def unit(x: F32) -> F32:
    out: F32 = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def synthesize(n: int, dim: int, queries: int = QUERIES, seed: int = 42) -> Data:
    """N clustered unit vectors with matching short texts, and perturbed queries."""
    rng = np.random.default_rng(seed)
    clusters = max(1, n // 100)
    centres = unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    member = rng.integers(0, clusters, size=n)
    # Within a cluster, records vary along a few latent directions (low intrinsic
    # dimension, as sentence embeddings do) plus a little isotropic noise.
    basis = rng.standard_normal((LATENT, dim)).astype(np.float32) / np.sqrt(LATENT)
    latent = rng.standard_normal((n, LATENT), dtype=np.float32) @ basis
    noise = rng.standard_normal((n, dim), dtype=np.float32)
    vectors = unit(centres[member] + 0.5 * latent + 0.03 * noise)
    # Zipf-distributed words; each cluster favours its own slice of the vocabulary.
    ranks = np.arange(1, VOCAB + 1, dtype=np.float64)
    probs = 1.0 / ranks
    probs /= probs.sum()
    words = rng.choice(VOCAB, size=(n, WORDS_PER_TEXT), p=probs)
    topical = (member[:, None] * 37 + rng.integers(0, 8, size=(n, 4))) % VOCAB
    words[:, :4] = topical
    texts = [f"note {i}: " + " ".join(f"w{w}" for w in row) for i, row in enumerate(words.tolist())]
    layer_list = list(Layer)
    layers = [layer_list[i % 3] for i in range(n)]
    picks = rng.choice(n, size=queries, replace=False)
    qvecs = unit(vectors[picks] + 0.03 * rng.standard_normal((queries, dim), dtype=np.float32))
    qtexts = [" ".join(texts[int(p)].split()[2:6]) + f" q{i}" for i, p in enumerate(picks)]
    return Data(texts, vectors, layers, qtexts, qvecs)


def exact_topk(data: F32, queries: F32, k: int) -> list[list[int]]:
    sims = queries @ data.T
    part = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1)
    top = np.take_along_axis(part, order, axis=1)
    return [row.tolist() for row in top]


def recall_at(found: list[list[int]], truth: list[list[int]], k: int = K) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth, strict=True))
    return round(hits / (k * len(truth)), 4)


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = np.asarray(times) * 1000.0
    return round(float(np.percentile(ms, 50)), 4), round(float(np.percentile(ms, 99)), 4)


def timed(fn: Callable[[int], list[int]], count: int) -> tuple[list[list[int]], list[float]]:
    found: list[list[int]] = []
    times: list[float] = []
    for i in range(count):
        t = time.perf_counter()
        found.append(fn(i))
        times.append(time.perf_counter() - t)
    return found, times


def bench_settings(
    home: Path, backend: str = "sqlite", extra: dict[str, Any] | None = None
) -> Settings:
    """Settings of a throw-away home: no lifecycle runs, neutral fusion, f16 index;
    ``extra`` adds backend settings (``memory.dsn``, ``memory.pg_schema``)."""
    base = load_settings(env={"MAGRAY_HOME": str(home)}, paths_factory=lambda: _paths(home))
    return base.with_overrides(
        {
            **(extra or {}),
            "memory.backend": backend,
            "memory.auto_lifecycle": False,
            "memory.vector_dtype": "f16",
            "search.recency_half_life_days": 0.0,
            "search.weight_interact": 1.0,
            "search.weight_insights": 1.0,
            "search.weight_assets": 1.0,
        },
        source="bench",
    )


def _paths(home: Path) -> Any:
    from magray.paths import resolve_paths

    return resolve_paths({"MAGRAY_HOME": str(home)})


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def hnswlib_baseline(
    vectors: F32, queries: F32, truth: list[list[int]], target: float
) -> tuple[dict[str, Any], Any]:
    """Raw hnswlib: build, then the smallest ef whose recall@10 reaches ``target``; the
    figures and the index (left at that ef; None when hnswlib is missing)."""
    try:
        import hnswlib
    except ImportError:
        return {"hnswlib_error": "hnswlib is not installed: pip install 'magray[bench]'"}, None
    t = time.perf_counter()
    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=16, ef_construction=128, random_seed=1)
    index.add_items(vectors, np.arange(len(vectors)))
    build_s = time.perf_counter() - t
    index.set_num_threads(1)
    best: dict[str, Any] = {}
    for ef in EFS:
        index.set_ef(max(ef, K))
        found, times = timed(
            lambda i: index.knn_query(queries[i], k=K)[0][0].tolist(), len(queries)
        )
        rec = recall_at(found, truth)
        p50, p99 = percentiles(times)
        best = {"hnswlib_ef": ef, "hnswlib_recall_at_10": rec, "hnswlib_p50_ms": p50}
        best["hnswlib_p99_ms"] = p99
        if rec >= target:
            break
    best["hnswlib_build_s"] = round(build_s, 2)
    return best, index


def run(
    n: int,
    dim: int,
    *,
    queries: int = QUERIES,
    home: Path | None = None,
    backend: str = "sqlite",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a store of ``n`` synthetic records on ``backend`` (its settings in ``extra``)
    and measure every figure in one run."""
    from magray.memory.service import Memory

    data = synthesize(n, dim, queries)
    table = dict(zip(data.texts, data.vectors, strict=True))
    table.update(zip(data.query_texts, data.query_vectors, strict=True))
    embedder = TableEmbedder(f"bench-synthetic-{dim}", dim, table)
    with tempfile.TemporaryDirectory(prefix="magray-bench-", dir=home) as tmp:
        root = Path(tmp)
        settings = bench_settings(root, backend, extra)
        report: dict[str, Any] = {"n": n, "dim": dim, "queries": queries, "k": K}
        items = [
            NewRecord(text=t, layer=layer, kind="note")
            for t, layer in zip(data.texts, data.layers, strict=True)
        ]
        t = time.perf_counter()
        with Memory(settings, embedder=embedder) as memory:
            for start in range(0, n, BATCH):
                memory.remember_many(items[start : start + BATCH])
            memory.sync_indexes()
            ingest_s = time.perf_counter() - t
            disk = dir_bytes(settings.paths.data_dir)
            if backend != "sqlite":  # the tables and every index, in the server's files
                index_bytes = getattr(memory.backend, "index_bytes", lambda: 0)
                disk = memory.backend.size_bytes() + index_bytes()
        report["ingest_s"] = round(ingest_s, 2)
        report["insert_per_s"] = round(n / ingest_s, 1)
        report["bytes_per_vector_disk"] = round(disk / n, 1)
        report.update(_measure(settings, embedder, data))
        report.update(_fresh_process(root, dim, data, backend, extra))
    return report


def _measure(settings: Settings, embedder: TableEmbedder, data: Data) -> dict[str, Any]:
    from magray.memory.service import Memory

    out: dict[str, Any] = {}
    truth = exact_topk(data.vectors, data.query_vectors, K)
    assets = np.asarray([i for i, layer in enumerate(data.layers) if layer is Layer.ASSETS])
    sub = exact_topk(data.vectors[assets], data.query_vectors, K)
    truth_assets = [[int(assets[j]) for j in row] for row in sub]
    with Memory(settings, embedder=embedder) as memory:
        num_of = _numbers(memory, data.texts)
        qn = len(data.query_texts)

        def recall_ids(mode: SearchMode, filters: Filters, i: int) -> list[int]:
            hits = memory.recall(Query(text=data.query_texts[i], k=K, mode=mode, filters=filters))
            return [num_of[h.record.text] for h in hits]

        # Warm up: open the indexes, fill caches.
        for i in range(min(20, qn)):
            recall_ids(SearchMode.HYBRID, Filters(), i)
        qvecs = data.query_vectors
        layers = tuple(Layer)

        def vector_stage(i: int) -> list[int]:
            pairs = memory.vector_candidates(qvecs[i], K, Filters(), layers)
            return [num_of_label[label] for label, _ in pairs[:K]]

        num_of_label = _label_map(memory, num_of, data.texts)
        found, times = timed(vector_stage, qn)
        out["vector_recall_at_10"] = recall_at(found, truth)
        out["vector_p50_ms"], out["vector_p99_ms"] = percentiles(times)
        found, times = timed(lambda i: recall_ids(SearchMode.VECTOR, Filters(), i), qn)
        out["recall_at_10"] = recall_at(found, truth)
        out["recall_p50_ms"], out["recall_p99_ms"] = percentiles(times)
        _, times = timed(lambda i: recall_ids(SearchMode.HYBRID, Filters(), i), qn)
        out["hybrid_p50_ms"], out["hybrid_p99_ms"] = percentiles(times)
        only = Filters(layers=(Layer.ASSETS,))
        found, times = timed(lambda i: recall_ids(SearchMode.VECTOR, only, i), qn)
        out["filtered_recall_at_10"] = recall_at(found, truth_assets)
        out["filtered_p50_ms"], out["filtered_p99_ms"] = percentiles(times)
        _, times = timed(lambda i: exact_topk(data.vectors, qvecs[i : i + 1], K)[0], qn)
        out["exact_p50_ms"], _ = percentiles(times)
        target = min(0.99, out["vector_recall_at_10"])
        baseline, hnsw = hnswlib_baseline(data.vectors, qvecs, truth, target)
        out.update(baseline)
        if "hnswlib_p50_ms" in out and out["hnswlib_p50_ms"] > 0:
            out["vector_vs_hnswlib"] = round(out["vector_p50_ms"] / out["hnswlib_p50_ms"], 2)
            out.update(_equal_recall(memory, vector_stage, truth, out["hnswlib_recall_at_10"], qn))
            if "vector_equal_recall_p50_ms" in out:  # backends whose expansion can be set
                out.update(
                    _side_by_side(memory, out["vector_equal_recall_ef"], vector_stage, hnsw, qvecs)
                )
    return out


def _equal_recall(
    memory: Any,
    vector_stage: Callable[[int], list[int]],
    truth: list[list[int]],
    target: float,
    queries: int,
) -> dict[str, Any]:
    """MAGRAY's vector stage at the smallest search expansion whose recall@10 reaches
    ``target`` (hnswlib's): the two at equal recall, as the vector-stage target reads."""
    indexes = getattr(memory.backend, "indexes", None)
    if indexes is None or not hasattr(indexes, "ef"):
        return {}
    best: dict[str, Any] = {}
    for ef in EFS:
        indexes.ef = ef
        found, times = timed(vector_stage, queries)
        rec = recall_at(found, truth)
        best = {"vector_equal_recall_ef": ef, "vector_equal_recall_at_10": rec}
        best["vector_equal_recall_p50_ms"] = percentiles(times)[0]
        if rec >= target:
            break
    return best


def _side_by_side(
    memory: Any, ef: int, vector_stage: Callable[[int], list[int]], hnsw: Any, queries: F32
) -> dict[str, Any]:
    """The vector stage (at ``ef``) and hnswlib (at its ef) timed query by query in turn,
    so that both see the same load: ``vector_vs_hnswlib_equal_recall`` is their ratio."""
    indexes = memory.backend.indexes
    before, indexes.ef = indexes.ef, ef
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(INTERLEAVED_ROUNDS):
        for i in range(len(queries)):
            t = time.perf_counter()
            vector_stage(i)
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            hnsw.knn_query(queries[i], k=K)
            theirs.append(time.perf_counter() - t)
    indexes.ef = before
    mine, base = percentiles(ours)[0], percentiles(theirs)[0]
    return {
        "vector_equal_recall_p50_ms": mine,
        "hnswlib_interleaved_p50_ms": base,
        "vector_vs_hnswlib_equal_recall": round(mine / base, 2) if base > 0 else None,
    }


def _numbers(memory: Any, texts: list[str]) -> dict[str, int]:
    """Each stored text → its position in the synthetic data."""
    return {t: i for i, t in enumerate(texts)}


def _label_map(memory: Any, num_of: dict[str, int], texts: list[str]) -> dict[int, int]:
    """Index labels (store row numbers) → position in the synthetic data."""
    return {row.num: num_of[row.record.text] for row in memory.backend.iter_records()}


_CHILD = """
import json, sys, time, resource
t0 = time.perf_counter()
import numpy as np
from pathlib import Path
from magray.bench.memory import TableEmbedder, bench_settings
from magray.memory.records import Query, SearchMode
from magray.memory.service import Memory
from magray.memory.backends.sqlite.vector_index import preload_onnxruntime
preload_onnxruntime(False)  # this process never runs an ONNX model
root, dim, text = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
vec = np.load(sys.argv[4])
rss0 = int(open("/proc/self/statm").read().split()[1]) * 4
settings = bench_settings(root, sys.argv[5], json.loads(sys.argv[6]))
memory = Memory(settings, embedder=TableEmbedder(f"bench-synthetic-{dim}", dim, {text: vec}))
hits = memory.recall(Query(text=text, k=10, mode=SearchMode.VECTOR), record_access=False)
elapsed = time.perf_counter() - t0
rss1 = int(open("/proc/self/statm").read().split()[1]) * 4
print(json.dumps({"open_s": elapsed, "hits": len(hits), "rss_delta_kb": rss1 - rss0}))
"""


def _fresh_process(
    root: Path, dim: int, data: Data, backend: str = "sqlite", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Import + open + first query in a new interpreter (the cold start a CLI pays)."""
    vec_file = root / "query.npy"
    np.save(vec_file, data.query_vectors[0])
    env = {**os.environ, "MAGRAY_HOME": str(root)}
    times: list[float] = []
    rss: list[int] = []
    for _ in range(3):
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(root),
                str(dim),
                data.query_texts[0],
                str(vec_file),
                backend,
                json.dumps(extra or {}),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if out.returncode != 0:
            return {"open_error": out.stderr.strip().splitlines()[-1:]}
        row = json.loads(out.stdout)
        times.append(row["open_s"])
        rss.append(int(row["rss_delta_kb"]))
    n = len(data.texts)
    return {
        "open_s": round(min(times), 3),
        "bytes_per_vector_ram": round(min(rss) * 1024 / n, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def with_home(settings: Settings, home: Path) -> Settings:
    return replace(settings, paths=_paths(home))
