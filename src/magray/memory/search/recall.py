"""Recall: one query against the store, from candidate budgets to the hits returned.

    query ─▶ embed ─▶ vector pool (``search.vectors``) ──┐
          └▶ keyword terms ─▶ keyword side (FTS5) ───────┴▶ candidates ─▶ fuse (``search.fusion``)
          ─▶ context and time (``rank.context``, ``rank.temporal``) ─▶ hydrate ─▶ rerank ─▶ hits

Fusion works on labels, scores, layers and times only; full records are read for the hits
that are returned. Every list holds at least the best ``NORM_DEPTH`` candidates (over all
layers for vectors), so a hit's rank does not depend on ``k``. Access statistics of the hits
are buffered and written off this path (``memory.access``).

``Memory.recall`` delegates to the ``Recall`` of its store, which keeps what the recalls of
one ``Memory`` share: the fusion parameters per settings object, the keyword worker thread
and whether the store's model was checked.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from magray.config import Settings
from magray.embed.base import Reranker
from magray.errors import ModelError, UsageError
from magray.memory.access import AccessBuffer
from magray.memory.backends import Backend
from magray.memory.backends.base import Candidate
from magray.memory.positional import positional
from magray.memory.rank.context import ContextParams, neighbours, with_context
from magray.memory.rank.temporal import time_mentions
from magray.memory.records import Explanation, Filters, Hit, Layer, Query, SearchMode
from magray.memory.search.fusion import NORM_DEPTH, FusionParams, fuse, fuse_convex, one_weight
from magray.memory.search.keywords import keyword_terms
from magray.memory.search.vectors import vector_pool

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from magray.memory.service import Memory

RERANK_DEPTH = 50
MAX_K = 10_000  # the most hits one recall returns
ALL_LAYERS = tuple(Layer)
_hit = positional(Hit)  # ``Hit(record, score, explanation)``, ten per recall


def fusion_params(settings: Settings) -> FusionParams:
    """How the two rankings are combined, from settings ``search.*``."""
    s = settings.search
    return FusionParams(
        rrf_k=s.rrf_k,
        vector_weight=s.vector_weight,
        keyword_weight=s.keyword_weight,
        layer_weights={layer: s.layer_weight(layer) for layer in Layer},
        recency_half_life_days=s.recency_half_life_days,
        method=s.fusion,
    )


def context_params(settings: Settings) -> ContextParams:
    """How neighbours, sessions and time mentions lift a hit, from settings ``search.*``."""
    s = settings.search
    return ContextParams(
        context_weight=s.context_weight,
        session_weight=s.session_weight,
        time_weight=s.time_weight,
    )


def _plain_order(params: FusionParams, layers: Sequence[Layer], context: ContextParams) -> bool:
    """Whether fused vector scores keep the cosine order (equal weights, no recency, no
    context)."""
    weights = {params.layer_weights.get(layer, 1.0) for layer in layers}
    return len(weights) == 1 and params.recency_half_life_days <= 0 and not context.active


def keyword_side(
    backend: Backend, terms: list[str], filters: Filters, pool: int, plain_fusion: bool
) -> tuple[list[tuple[int, float]], list[Candidate]]:
    """The keyword ranking of a recall and, unless fusion is plain, its candidates."""
    if plain_fusion:
        return backend.keyword_ranking(terms, filters, pool), []
    hits = backend.keyword_search(terms, filters, pool)
    ranking = [(hit.num, hit.score) for hit in hits]
    return ranking, [Candidate(hit.num, hit.layer, hit.created_at) for hit in hits]


def hydrate(
    backend: Backend,
    fused: list[tuple[int, float, Explanation]],
    depth: int,
    filters: Filters,
    *,
    explain: bool,
) -> list[tuple[int, Hit]]:
    """(label, hit) of the best ``depth`` fused labels that still exist and match."""
    hits: list[tuple[int, Hit]] = []
    start = 0
    while len(hits) < depth and start < len(fused):
        chunk = fused[start : start + depth - len(hits)]
        start += len(chunk)
        rows = backend.fetch([num for num, _, _ in chunk], filters)
        for num, score, expl in chunk:
            row = rows.get(num)
            if row is not None:  # deleted or moved away since the index was read
                hits.append((num, _hit(row.record, score, expl if explain else None)))
    return hits


def rerank(reranker: Reranker | None, query: Query, hits: list[Hit]) -> list[Hit]:
    """``hits`` re-ordered by the cross-encoder's scores of (query, text)."""
    if reranker is None:
        raise ModelError(
            "no reranker is installed; add one with `magray models add bge-reranker-v2-m3"
            " PATH` (or install it online with `magray models install bge-reranker-v2-m3`)."
        )
    if not hits:
        return hits
    scores = reranker.score(query.text, [h.record.text for h in hits])
    order = np.argsort(-scores, kind="stable")
    out: list[Hit] = []
    for i in order:
        hit = hits[int(i)]
        expl = hit.explanation
        if expl is not None:
            expl = dataclasses.replace(expl, rerank_score=float(scores[i]))
        out.append(Hit(hit.record, float(scores[i]), expl))
    return out


class Recall:
    """The read path of one ``Memory``: its store, its access buffer and what its recalls
    share between calls."""

    def __init__(self, memory: Memory, backend: Backend, accesses: AccessBuffer) -> None:
        self._memory = memory  # settings, embedder, reranker and the model check
        self._backend = backend
        self._accesses = accesses
        self._model_checked = False  # the vector side is checked once per Memory
        self._param_cache: (
            tuple[Settings, dict[SearchMode, tuple[FusionParams, ContextParams]]] | None
        ) = None
        self._keyword_thread: ThreadPoolExecutor | None = None  # hybrid's keyword side

    def close(self) -> None:
        """End the keyword worker thread, if one was started."""
        worker = self._keyword_thread
        if worker is not None:
            worker.shutdown(wait=True)
            self._keyword_thread = None

    def _check_vectors(self) -> None:
        if not self._model_checked:
            self._memory.check_model()
            self._model_checked = True

    def _mode_params(self, mode: SearchMode) -> tuple[FusionParams, ContextParams]:
        """Fusion and context parameters of a recall in ``mode``, made once per settings
        object (``settings`` is frozen; a new one is seen at once)."""
        settings = self._memory.settings
        cache = self._param_cache
        if cache is None or cache[0] is not settings:
            cache = self._param_cache = (settings, {})
        made = cache[1].get(mode)
        if made is None:
            params = fusion_params(settings)
            if mode is SearchMode.VECTOR:
                params = dataclasses.replace(params, vector_weight=1.0, keyword_weight=0.0)
            elif mode is SearchMode.KEYWORD:
                params = dataclasses.replace(params, vector_weight=0.0, keyword_weight=1.0)
            made = cache[1][mode] = (params, context_params(settings))
        return made

    def vector_candidates(
        self,
        qvec: npt.NDArray[np.float32],
        k: int,
        filters: Filters,
        layers: tuple[Layer, ...],
    ) -> list[tuple[int, float]]:
        """(label, cosine) of the best ``k`` vector matches over ``layers``, best first."""
        self._check_vectors()
        return [(num, sim) for num, sim, _ in vector_pool(self._backend, qvec, layers, k, filters)]

    def run(self, query: Query, *, record_access: bool = True) -> list[Hit]:
        """``Memory.recall``: the hits of ``query``, best first."""
        if not query.text.strip():
            raise UsageError("the search query is empty; give some words to search for.")
        if query.k < 1:
            raise UsageError(f"-k must be at least 1 (got {query.k}).")
        if query.k > MAX_K:
            raise UsageError(f"-k must be at most {MAX_K:,} (got {query.k}).")
        backend = self._backend
        filters = query.filters
        params, context = self._mode_params(query.mode)
        if context.active and not backend.has_sessions():
            context = ContextParams()  # no conversation in the store: nothing to lift
        depth = max(query.k, RERANK_DEPTH if query.rerank else 0)
        pool = max(NORM_DEPTH, 2 * depth)
        layers = filters.layers or ALL_LAYERS
        now = time.time()
        cands: dict[int, Candidate] = {}
        vector: list[tuple[int, float]] = []
        keyword: list[tuple[int, float]] = []
        # Plain fusion (no filters, context or recency, one layer weight) needs nothing
        # about the records: the keyword side skips reading them, every label counts.
        plain_fusion = not (context.active or filters.active) and one_weight(params) is not None
        terms = [] if query.mode is SearchMode.VECTOR else keyword_terms(query.text)
        keyword_job: Future[tuple[list[tuple[int, float]], list[Candidate]]] | None = None
        if query.mode is SearchMode.HYBRID and self._concurrent_reads():
            self._check_vectors()  # once per Memory, before anything runs beside it
            # The keyword search runs beside the query's embedding and vector search (both
            # release the GIL); the candidates it brings are added after the vector side's,
            # in the order of the sequential path.
            keyword_job = self._keyword_worker().submit(
                keyword_side, backend, terms, filters, pool, plain_fusion
            )
        if query.mode in (SearchMode.HYBRID, SearchMode.VECTOR):
            qvec = self._memory.embed_query(query.text)
            self._check_vectors()
            # Vector mode under a plain cosine order (equal layer weights, no recency) is
            # exact with k per layer; anything else needs the normalisation pool.
            plain = query.mode is SearchMode.VECTOR and _plain_order(params, layers, context)
            for num, sim, layer in vector_pool(
                backend, qvec, layers, depth if plain else pool, filters
            ):
                vector.append((num, sim))
                if not plain_fusion:
                    cands[num] = Candidate(num, layer, 0.0)
        if query.mode in (SearchMode.HYBRID, SearchMode.KEYWORD):
            keyword, found = (
                keyword_job.result()
                if keyword_job is not None
                else keyword_side(backend, terms, filters, pool, plain_fusion)
            )
            for cand in found:
                cands[cand.num] = cand
        if context.active:
            # Neighbours may be lifted by their context: they are candidates too; the store
            # tells every candidate's session.
            cands = backend.candidates([*cands, *neighbours(cands)], filters)
        elif filters.active or params.recency_half_life_days > 0:
            # Vector labels are candidates only: check them against the filters and learn
            # their event times from the store.
            cands = backend.candidates(cands, filters)
        fuse_fn = fuse_convex if params.method == "convex" else fuse
        # Only the head of the fused list is explained and hydrated; context ranking
        # re-orders the whole list. Should hydration run out (labels deleted since the
        # indexes were read), the whole list is fused again.
        limit = None if context.active else 4 * depth
        pool_cands = None if plain_fusion else cands
        # Explanations are built only where they are read: --explain, context ranking.
        explained = query.explain or context.active
        fused = fuse_fn(vector, keyword, pool_cands, params, now, limit, explain=explained)
        if context.active:
            timed = time_mentions(backend, query.text, cands, filters, context.time_weight)
            explain = 2 * depth if query.explain else 0
            fused = with_context(fused, cands, context, explain=explain, timed=timed)
        labelled = hydrate(backend, fused, depth, filters, explain=query.explain)
        if len(labelled) < depth and len(fused) == limit:
            fused = fuse_fn(vector, keyword, pool_cands, params, now, explain=explained)
            labelled = hydrate(backend, fused, depth, filters, explain=query.explain)
        hits = [hit for _, hit in labelled]
        if query.rerank:
            hits = rerank(self._memory.reranker, query, hits)
        hits = hits[: query.k]
        if record_access and hits:
            if query.rerank:
                self._note_access(labelled, hits)
            else:  # the hits are the head of ``labelled``, in its order
                self._accesses.add([num for num, _ in labelled[: len(hits)]], time.time())
        return hits

    def _concurrent_reads(self) -> bool:
        concurrent: Callable[[], bool] | None = getattr(self._backend, "concurrent_reads", None)
        return concurrent is not None and concurrent()

    def _keyword_worker(self) -> ThreadPoolExecutor:
        worker = self._keyword_thread
        if worker is None:
            from concurrent.futures import ThreadPoolExecutor  # 2 ms of import: on first use

            worker = self._keyword_thread = ThreadPoolExecutor(
                1, thread_name_prefix="magray-keywords"
            )
        return worker

    def _note_access(self, labelled: list[tuple[int, Hit]], hits: list[Hit]) -> None:
        """Buffer one access per returned hit (written off the recall path)."""
        num_of = {hit.record.id: num for num, hit in labelled}
        self._accesses.add([num_of[h.record.id] for h in hits], time.time())
