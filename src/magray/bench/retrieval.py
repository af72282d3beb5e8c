"""Retrieval-quality benchmark: ingest a BEIR dataset into a memory store and score recall.

The corpus goes into a dedicated store, ``<data_dir>/bench/<dataset>/<embed.model>/``, in the
Assets layer as ``kind="doc"`` records whose source uri is the document id. Unchanged
documents are recognised by content hash, so a second run embeds nothing. Each mode
(keyword, vector, hybrid, hybrid + rerank) then answers every judged query with k = 100
through ``Memory.recall`` and is scored with nDCG@10 and Recall@100.

``collect_rankings`` + ``score_fusion`` replay the fusion step offline, from one retrieval
per query, so fusion parameters can be swept quickly (``benchmarks/retrieval.py --sweep``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from magray.bench.beir import Dataset
from magray.bench.metrics import mean, ndcg_at_k, recall_at_k
from magray.config import Settings
from magray.errors import UsageError
from magray.memory.backends.base import Candidate
from magray.memory.records import Explanation, Filters, Layer, NewRecord, Query, SearchMode, Source
from magray.memory.search.keywords import keyword_terms
from magray.memory.service import Memory, Progress

MODES = ("keyword", "vector", "hybrid", "rerank")
DOC_KIND = "doc"
K = 100
ASSETS_ONLY = Filters(layers=(Layer.ASSETS,))

FuseFn = Callable[
    [Sequence[tuple[int, float]], Sequence[tuple[int, float]], Mapping[int, Candidate], float],
    list[tuple[int, float, Explanation]],
]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "dataset"


def bench_settings(settings: Settings, dataset_name: str) -> Settings:
    """Settings whose memory store is the benchmark's own, one per dataset and model."""
    root = settings.paths.data_dir / "bench" / _slug(dataset_name) / _slug(settings.embed.model)
    moved = replace(settings, paths=replace(settings.paths, data_dir=root))
    return moved.with_overrides({"memory.auto_lifecycle": False}, source="bench")


@dataclass(frozen=True, slots=True)
class IngestReport:
    documents: int  # distinct indexable texts in the corpus
    embedded: int  # documents embedded in this run
    removed: int  # stale documents deleted from the store
    seconds: float

    @property
    def reused_vectors(self) -> bool:
        return self.embedded == 0 and self.documents > 0


def ingest(memory: Memory, dataset: Dataset, progress: Progress | None = None) -> IngestReport:
    """Bring the store in step with the corpus, embedding only documents it lacks."""
    started = time.perf_counter()
    wanted: dict[str, NewRecord] = {}
    for doc in dataset.corpus.values():
        text = doc.indexed_text
        if not text:
            continue
        item = NewRecord(
            text=text, layer=Layer.ASSETS, kind=DOC_KIND, source=Source(uri=doc.id), importance=1.0
        )
        wanted.setdefault(_hash(text), item)
    memory.check_model()
    model_id = memory.embedder.model_id
    stored = {
        row.record.content_hash: (row.num, row.record.embedding_model)
        for row in memory.backend.iter_records(Filters(layers=(Layer.ASSETS,), kind=DOC_KIND))
        if row.record.embedding_model is not None
    }
    stale = [num for chash, (num, model) in stored.items() if chash not in wanted]
    missing = [
        item for chash, item in wanted.items() if stored.get(chash, (0, None))[1] != model_id
    ]
    if stale:
        memory.backend.delete(stale)
    if missing:
        memory.remember_many(missing, progress)
    elif progress:
        progress(len(wanted), len(wanted))
    memory.sync_indexes()
    return IngestReport(
        documents=len(wanted),
        embedded=len(missing),
        removed=len(stale),
        seconds=time.perf_counter() - started,
    )


def _hash(text: str) -> str:
    from magray.hashing import content_hash

    return content_hash(text)


def doc_ids_by_hash(dataset: Dataset) -> dict[str, list[str]]:
    """Content hash → the corpus ids with that text (identical documents share a record)."""
    out: dict[str, list[str]] = {}
    for doc in dataset.corpus.values():
        if doc.indexed_text:
            out.setdefault(_hash(doc.indexed_text), []).append(doc.id)
    return out


def query_ids(dataset: Dataset, limit: int | None = None) -> list[str]:
    ids = dataset.judged_queries
    if limit is not None:
        if limit < 1:
            raise UsageError(f"--limit-queries must be at least 1 (got {limit}).")
        ids = ids[:limit]
    if not ids:
        raise UsageError(f"{dataset.path} has no queries with positive judgments to score.")
    return ids


@dataclass(frozen=True, slots=True)
class ModeResult:
    ndcg_at_10: float
    recall_at_100: float
    ms_per_query: float

    def as_json(self) -> dict[str, float]:
        return {
            "ndcg_at_10": round(self.ndcg_at_10, 4),
            "recall_at_100": round(self.recall_at_100, 4),
            "ms_per_query": round(self.ms_per_query, 2),
        }


def score_runs(runs: Mapping[str, Sequence[str]], dataset: Dataset) -> tuple[float, float]:
    """Mean nDCG@10 and Recall@100 of ranked document ids per query."""
    ndcgs = [ndcg_at_k(ranked, dataset.qrels.get(q, {}), 10) for q, ranked in runs.items()]
    recalls = [recall_at_k(ranked, dataset.qrels.get(q, {}), K) for q, ranked in runs.items()]
    return mean(ndcgs), mean(recalls)


def evaluate_mode(memory: Memory, dataset: Dataset, mode: str, ids: Sequence[str]) -> ModeResult:
    """Answer every query through ``Memory.recall`` in ``mode`` and score the rankings."""
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    search_mode = SearchMode.HYBRID if mode == "rerank" else SearchMode(mode)
    by_hash = doc_ids_by_hash(dataset)
    runs: dict[str, list[str]] = {}
    started = time.perf_counter()
    for qid in ids:
        query = Query(
            text=dataset.queries[qid],
            k=K,
            mode=search_mode,
            filters=ASSETS_ONLY,
            rerank=mode == "rerank",
        )
        hits = memory.recall(query, record_access=False)
        runs[qid] = [d for h in hits for d in by_hash.get(h.record.content_hash, ())]
    elapsed = time.perf_counter() - started
    ndcg, recall = score_runs(runs, dataset)
    return ModeResult(ndcg, recall, 1000.0 * elapsed / max(len(ids), 1))


def reranker_available(memory: Memory) -> bool:
    return memory.reranker is not None


def run_benchmark(
    memory: Memory,
    dataset: Dataset,
    modes: Iterable[str] | None = None,
    *,
    limit_queries: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Ingest (or reuse) the corpus, evaluate each mode, and return the JSON report."""
    ids = query_ids(dataset, limit_queries)
    chosen = list(dict.fromkeys(modes or ()))
    if not chosen:
        chosen = ["keyword", "vector", "hybrid"]
        if reranker_available(memory):
            chosen.append("rerank")
    for mode in chosen:
        if mode not in MODES:
            raise UsageError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}.")
    report = ingest(memory, dataset, progress)
    results = {mode: evaluate_mode(memory, dataset, mode, ids).as_json() for mode in chosen}
    return {
        "dataset": dataset.name,
        "queries": len(ids),
        "modes": results,
        "model": memory.embedder.model_id,
        "documents": report.documents,
        "embedded": report.embedded,
        "reused_vectors": report.reused_vectors,
        "ingest_seconds": round(report.seconds, 2),
        "fusion": {
            "method": memory.settings.search.fusion,
            "rrf_k": memory.settings.search.rrf_k,
            "vector_weight": memory.settings.search.vector_weight,
            "keyword_weight": memory.settings.search.keyword_weight,
        },
    }


# -- offline fusion replay (for parameter sweeps) ------------------------------------------
@dataclass(frozen=True, slots=True)
class QueryRankings:
    """The raw candidate lists of one query, as ``Memory.recall`` sees them before fusion."""

    query_id: str
    vector: list[tuple[int, float]]
    keyword: list[tuple[int, float]]
    candidates: dict[int, Candidate]


def collect_rankings(
    memory: Memory, dataset: Dataset, ids: Sequence[str], pool: int = 2 * K
) -> tuple[list[QueryRankings], dict[int, list[str]]]:
    """Vector and BM25 candidates (``pool`` deep) per query, plus label → corpus ids."""
    by_hash = doc_ids_by_hash(dataset)
    texts = [dataset.queries[q] for q in ids]
    vectors = np.vstack(
        [memory.embedder.embed_queries(texts[i : i + 64]) for i in range(0, len(texts), 64)]
    ).astype(np.float32)
    out: list[QueryRankings] = []
    labels: dict[int, list[str]] = {}
    for qid, text, qvec in zip(ids, texts, vectors, strict=True):
        vec = memory.vector_candidates(qvec, pool, ASSETS_ONLY, (Layer.ASSETS,))
        hits = memory.backend.keyword_search(keyword_terms(text), ASSETS_ONLY, pool)
        kw = [(h.num, h.score) for h in hits]
        rows = memory.backend.fetch([n for n, _ in vec] + [n for n, _ in kw], ASSETS_ONLY)
        for num, row in rows.items():
            labels.setdefault(num, by_hash.get(row.record.content_hash, []))
        cands = {n: Candidate(n, r.record.layer, r.record.created_at) for n, r in rows.items()}
        out.append(QueryRankings(qid, vec, kw, cands))
    return out, labels


def score_fusion(
    rankings: Sequence[QueryRankings],
    labels: Mapping[int, Sequence[str]],
    dataset: Dataset,
    fuse_fn: FuseFn,
    depth: int = K,
) -> tuple[float, float]:
    """nDCG@10 and Recall@100 of ``fuse_fn`` replayed over collected rankings."""
    now = time.time()
    runs: dict[str, list[str]] = {}
    for r in rankings:
        fused = fuse_fn(r.vector, r.keyword, r.candidates, now)[:depth]
        runs[r.query_id] = [d for num, _, _ in fused for d in labels.get(num, ())]
    return score_runs(runs, dataset)
