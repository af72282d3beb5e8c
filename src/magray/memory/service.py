"""The ``Memory`` facade: remember, recall, get, list, forget, stats.

Storage is the backend's (``memory.backends``, setting ``memory.backend``); lifecycle
(``memory.lifecycle``), ingest (``memory.ingest``), backups and JSONL transfer
(``memory.transfer``) and maintenance work through this class and its ``backend``.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from magray.config import Settings
from magray.embed.base import Embedder, Reranker
from magray.errors import DimensionMismatchError, ModelError, UsageError
from magray.memory.access import AccessBuffer
from magray.memory.backends import Backend, open_backend
from magray.memory.backends.base import Candidate, StoredRow, Warn
from magray.memory.rank.context import ContextParams, neighbours, with_context
from magray.memory.rank.temporal import time_mentions
from magray.memory.records import (
    MAX_INT,
    MAX_TEXT_CHARS,
    MAX_TIME,
    MIN_TIME,
    Explanation,
    Filters,
    Hit,
    Layer,
    NewRecord,
    Query,
    Record,
    SearchMode,
)
from magray.memory.search.fusion import NORM_DEPTH, FusionParams, fuse, fuse_convex, one_weight
from magray.memory.search.keywords import keyword_terms
from magray.memory.search.vectors import vector_pool

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

log = logging.getLogger("magray")

Progress = Callable[[int, int | None], None]
EMBED_BATCH = 256  # texts per embedder call
WRITE_BATCH = 1024  # the most records one write transaction holds
RERANK_DEPTH = 50
MAX_K = 10_000  # the most hits one recall returns


def _plain_order(params: FusionParams, layers: Sequence[Layer], context: ContextParams) -> bool:
    """Whether fused vector scores keep the cosine order (equal weights, no recency, no
    context)."""
    weights = {params.layer_weights.get(layer, 1.0) for layer in layers}
    return len(weights) == 1 and params.recency_half_life_days <= 0 and not context.active


_OPEN: weakref.WeakSet[Memory] = weakref.WeakSet()  # written at exit if never closed


@atexit.register
def _flush_at_exit() -> None:
    for memory in list(_OPEN):
        with contextlib.suppress(Exception):  # stats never fail a process
            memory.flush_access()


@dataclass(frozen=True, slots=True)
class RememberResult:
    id: str
    layer: Layer
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """As ``memory add --json``, ``POST /v1/memories`` and ``memory_remember`` print it."""
        return {"id": self.id, "layer": str(self.layer), "created": self.created}


def _as_new(record: Record) -> NewRecord:
    return NewRecord(
        text=record.text,
        layer=record.layer,
        kind=record.kind,
        tags=record.tags,
        project=record.project,
        session=record.session,
        importance=record.importance,
        pinned=record.pinned,
    )


def validate(item: NewRecord) -> None:
    """Reject input a user should fix, with one sentence saying how."""
    if not item.text.strip():
        raise UsageError("the text to remember is empty; give some text or pipe it with '-'.")
    if len(item.text) > MAX_TEXT_CHARS:
        raise UsageError(
            f"the text has {len(item.text):,} characters, more than one memory holds"
            f" ({MAX_TEXT_CHARS:,}); split it, or save it as a file and `magray ingest` it."
        )
    if "\x00" in item.text:
        raise UsageError("the text contains NUL bytes; remember text, not binary data.")
    if not 0.0 <= item.importance <= 1.0:
        raise UsageError(f"importance must be between 0 and 1 (got {item.importance}).")
    if item.occurred_at is not None and not MIN_TIME <= item.occurred_at <= MAX_TIME:
        raise UsageError(
            "occurred_at must be unix seconds between the years 1 and 9999"
            f" (got {item.occurred_at!r})."
        )
    if not item.kind.strip():
        raise UsageError("kind must not be empty.")
    for tag in item.tags:
        if not tag.strip() or "," in tag:
            raise UsageError(f"invalid tag {tag!r}: tags are non-empty and contain no commas.")


class Memory:
    """Three-layer semantic memory over one store (``backend``) and its derived indexes."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        warn: Warn | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings
        self.warn: Warn = warn or (lambda msg: log.warning("%s", msg))
        self._backend: Backend = backend or open_backend(settings, warn=lambda m: self.warn(m))
        self._embedder = embedder
        self._reranker = reranker
        self._model_checked = False  # the vector side is checked once per Memory
        self._accesses = AccessBuffer(self._backend.record_accesses)  # written off recall
        self._param_cache: (
            tuple[Settings, dict[SearchMode, tuple[FusionParams, ContextParams]]] | None
        ) = None
        self._keyword_thread: ThreadPoolExecutor | None = None  # hybrid's keyword side
        if hasattr(self._backend, "reembed"):  # a store that can lose vectors with a file
            self._backend.reembed = self._reembed_lost
        _OPEN.add(self)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._accesses.close()
        worker = getattr(self, "_keyword_thread", None)
        if worker is not None:
            worker.shutdown(wait=True)
            self._keyword_thread = None
        _OPEN.discard(self)
        self._backend.close()

    @property
    def backend(self) -> Backend:
        """The store. Access statistics buffered by ``recall`` are written first, so
        whatever reads the store through here sees them."""
        if getattr(self, "_accesses", None):  # None: built without __init__ (tests)
            self.flush_access()
        return self._backend

    @backend.setter
    def backend(self, backend: Backend) -> None:
        old = getattr(self, "_accesses", None)
        if old is not None:
            old.close()
        self._backend = backend
        self._accesses = AccessBuffer(backend.record_accesses)

    def flush_access(self) -> None:
        """Write the buffered access statistics of recalled hits now."""
        self._accesses.flush()

    # -- models and indexes ----------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from magray.embed import load_embedder

            self._embedder = load_embedder(self.settings)
        return self._embedder

    @property
    def stored_model(self) -> tuple[str | None, int | None]:
        return self._backend.embedding_model()

    def _check_vectors(self) -> None:
        if not self._model_checked:
            self.check_model()
            self._model_checked = True

    def _reembed_lost(self, nums: list[int]) -> int:
        """Embed again the text of records whose vectors the store lost (a damaged index
        file: see ``backends.sqlite.vector_source``); returns how many were embedded."""
        model, _ = self.stored_model
        embedder = self.embedder
        if model is not None and model != embedder.model_id:
            return 0  # another model: `magray memory reindex --reembed` decides
        done = 0
        for start in range(0, len(nums), EMBED_BATCH):
            rows = self._backend.fetch(nums[start : start + EMBED_BATCH])
            labels = sorted(rows)
            if not labels:
                continue
            vectors = embedder.embed_documents([rows[n].record.text for n in labels])
            rest = np.asarray(vectors, dtype="<f4")
            self._backend.set_vectors(
                [(n, rest[i].tobytes()) for i, n in enumerate(labels)], embedder.model_id
            )
            done += len(labels)
        return done

    def check_model(self) -> None:
        """Refuse to mix vectors: the store's model must be the active model."""
        model, dim = self.stored_model
        if model is None:
            return
        active = self.embedder
        if dim != active.dim:
            raise DimensionMismatchError(
                f"this store holds {dim}-d vectors of {model} but the active model"
                f" {active.model_id} makes {active.dim}-d vectors; run `magray memory reindex"
                f" --reembed` to re-embed it, or set embed.model back to {model}."
            )
        if model != active.model_id:
            raise DimensionMismatchError(
                f"this store was embedded with {model} but the active model is"
                f" {active.model_id}; run `magray memory reindex --reembed` to re-embed it,"
                f" or set embed.model back to {model}."
            )

    # -- writing ---------------------------------------------------------------------------
    def remember(self, item: NewRecord) -> RememberResult:
        return self.remember_many([item])[0]

    def remember_many(
        self, items: Sequence[NewRecord], progress: Progress | None = None
    ) -> list[RememberResult]:
        """Embed and store ``items``; identical content in the same layer+project is bumped."""
        for item in items:
            validate(item)
        self.check_model()
        embedder = self.embedder
        results: list[RememberResult] = []
        pending: list[tuple[NewRecord, bytes]] = []
        last_write = time.monotonic()
        for start in range(0, len(items), EMBED_BATCH):
            batch = items[start : start + EMBED_BATCH]
            vectors = embedder.embed_documents([item.text for item in batch])  # outside the lock
            rows = np.asarray(vectors, dtype="<f4")
            pending.extend((item, rows[i].tobytes()) for i, item in enumerate(batch))
            # Fast embedders (cached or precomputed vectors) write a few batches per
            # transaction, which saves commits and keyword-index merges; a slow model writes
            # every batch, so progress and the lock stay as fine-grained as before.
            last = start + EMBED_BATCH >= len(items)
            if last or len(pending) >= WRITE_BATCH or time.monotonic() - last_write >= 1.0:
                inserted = self.backend.insert(
                    pending, model_id=embedder.model_id, dim=embedder.dim, now=time.time()
                )
                pending = []
                last_write = time.monotonic()
                results.extend(
                    RememberResult(id=r.id, layer=r.layer, created=r.created) for r in inserted
                )
                if progress:
                    progress(len(results), len(items))
        from magray.memory.lifecycle import run as lifecycle

        lifecycle.maybe_run(self)
        return results

    def forget(self, id_or_prefix: str) -> Record:
        stored = self.backend.resolve(id_or_prefix)
        self.backend.delete([stored.num])
        return stored.record

    def pin(self, id_or_prefix: str, pinned: bool = True) -> Record:
        """Pin (never expires) or unpin a record."""
        stored = self.backend.resolve(id_or_prefix)
        self.backend.update(stored.num, now=time.time(), pinned=pinned)
        return self.backend.resolve(stored.record.id).record

    def move(self, id_or_prefix: str, layer: Layer) -> Record:
        """Move a record to ``layer`` by hand (its TTL counts from now)."""
        stored = self.backend.resolve(id_or_prefix)
        self.backend.update(stored.num, now=time.time(), layer=layer)
        return self.backend.resolve(stored.record.id).record

    def edit(self, id_or_prefix: str, text: str) -> Record:
        """Replace a record's text (re-embedded), keeping its id, layer, tags and history."""
        stored = self.backend.resolve(id_or_prefix)
        validate(dataclasses.replace(_as_new(stored.record), text=text))
        self.check_model()
        vector = self.embedder.embed_documents([text])[0]
        self.backend.replace_text(
            stored.num,
            text,
            np.asarray(vector, dtype="<f4").tobytes(),
            model_id=self.embedder.model_id,
            now=time.time(),
        )
        return self.backend.resolve(stored.record.id).record

    def forget_where(
        self,
        filters: Filters,
        *,
        source: Path | None = None,
        dry_run: bool = False,
    ) -> list[Record]:
        """Forget every record matching ``filters`` (and, with ``source``, ingested from that
        file or from under that folder). Their ingest bookkeeping goes too, so a later
        ``ingest`` adds them again. With ``dry_run`` nothing changes."""
        if filters.project is not None and not filters.project.strip():
            # an empty project filters nothing: it would forget every record
            raise UsageError(
                "the project to forget is empty; give its name (see `magray sources list`)."
            )
        prefix = str(source.expanduser().resolve()) if source is not None else None
        doomed: list[StoredRow] = []
        for row in self.backend.iter_records(filters):
            uri = row.record.source.uri if row.record.source else None
            if prefix is not None and not (
                uri is not None and (uri == prefix or uri.startswith(prefix.rstrip("/") + "/"))
            ):
                continue
            doomed.append(row)
        if dry_run or not doomed:
            return [row.record for row in doomed]
        self.backend.delete([row.num for row in doomed])
        sources: dict[tuple[str, Layer], list[str]] = {}
        for row in doomed:
            if row.record.source is not None:
                key = (row.record.project or "", row.record.layer)
                sources.setdefault(key, []).append(row.record.source.uri)
        for (project, layer), uris in sources.items():
            self.backend.forget_sources(list(dict.fromkeys(uris)), project, layer)
        return [row.record for row in doomed]

    # -- reading ---------------------------------------------------------------------------
    def get(self, id_or_prefix: str) -> Record:
        return self.backend.resolve(id_or_prefix).record

    def resolve_ids(self, ids: Sequence[str]) -> list[str]:
        """The full ids of ``ids`` (ids or unique prefixes), in order, without repeats.

        Raises:
            NotFoundError: one names no memory (the message names it).
            UsageError: one is too short or matches several memories.
        """
        return list(dict.fromkeys(self.get(i).id for i in ids))

    def list_records(
        self, filters: Filters | None = None, *, limit: int = 20, offset: int = 0
    ) -> list[Record]:
        """Records matching ``filters``, newest first."""
        if not 1 <= limit <= MAX_INT:
            raise UsageError(f"limit must be between 1 and 2**63 - 1 (got {limit}).")
        if not 0 <= offset <= MAX_INT:
            raise UsageError(f"offset must be between 0 and 2**63 - 1 (got {offset}).")
        rows = self.backend.list_records(filters or Filters(), limit=limit, offset=offset)
        return [s.record for s in rows]

    def fusion_params(self) -> FusionParams:
        s = self.settings.search
        return FusionParams(
            rrf_k=s.rrf_k,
            vector_weight=s.vector_weight,
            keyword_weight=s.keyword_weight,
            layer_weights={layer: s.layer_weight(layer) for layer in Layer},
            recency_half_life_days=s.recency_half_life_days,
            method=s.fusion,
        )

    def context_params(self) -> ContextParams:
        s = self.settings.search
        return ContextParams(
            context_weight=s.context_weight,
            session_weight=s.session_weight,
            time_weight=s.time_weight,
        )

    def _mode_params(self, mode: SearchMode) -> tuple[FusionParams, ContextParams]:
        """Fusion and context parameters of a recall in ``mode``, made once per settings
        object (``settings`` is frozen; a new one is seen at once)."""
        cache: tuple[Settings, dict[SearchMode, tuple[FusionParams, ContextParams]]] | None
        cache = getattr(self, "_param_cache", None)
        if cache is None or cache[0] is not self.settings:
            cache = self._param_cache = (self.settings, {})
        made = cache[1].get(mode)
        if made is None:
            params = self.fusion_params()
            if mode is SearchMode.VECTOR:
                params = dataclasses.replace(params, vector_weight=1.0, keyword_weight=0.0)
            elif mode is SearchMode.KEYWORD:
                params = dataclasses.replace(params, vector_weight=0.0, keyword_weight=1.0)
            made = cache[1][mode] = (params, self.context_params())
        return made

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return np.asarray(self.embedder.embed_queries([text])[0], dtype=np.float32)

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

    def recall(self, query: Query, *, record_access: bool = True) -> list[Hit]:
        """Hybrid (or vector / keyword) search with filters; bumps access stats of the hits.

        Fusion works on labels, scores, layers and times only; full records are read for
        the hits that are returned. Every list holds at least the best ``NORM_DEPTH``
        candidates (over all layers for vectors), so a hit's rank does not depend on ``k``.
        Access statistics are buffered and written off this path (``memory.access``).
        """
        if not query.text.strip():
            raise UsageError("the search query is empty; give some words to search for.")
        if query.k < 1:
            raise UsageError(f"-k must be at least 1 (got {query.k}).")
        if query.k > MAX_K:
            raise UsageError(f"-k must be at most {MAX_K:,} (got {query.k}).")
        filters = query.filters
        params, context = self._mode_params(query.mode)
        if context.active and not self._backend.has_sessions():
            context = ContextParams()  # no conversation in the store: nothing to lift
        depth = max(query.k, RERANK_DEPTH if query.rerank else 0)
        pool = max(NORM_DEPTH, 2 * depth)
        layers = filters.layers or tuple(Layer)
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
                self._keyword_side, terms, filters, pool, plain_fusion
            )
        if query.mode in (SearchMode.HYBRID, SearchMode.VECTOR):
            qvec = self.embed_query(query.text)
            self._check_vectors()
            # Vector mode under a plain cosine order (equal layer weights, no recency) is
            # exact with k per layer; anything else needs the normalisation pool.
            plain = query.mode is SearchMode.VECTOR and _plain_order(params, layers, context)
            for num, sim, layer in self._vector_pool(
                qvec, layers, depth if plain else pool, filters
            ):
                vector.append((num, sim))
                if not plain_fusion:
                    cands[num] = Candidate(num, layer, 0.0)
        if query.mode in (SearchMode.HYBRID, SearchMode.KEYWORD):
            keyword, found = (
                keyword_job.result()
                if keyword_job is not None
                else self._keyword_side(terms, filters, pool, plain_fusion)
            )
            for cand in found:
                cands[cand.num] = cand
        if context.active:
            # Neighbours may be lifted by their context: they are candidates too; the store
            # tells every candidate's session.
            cands = self._backend.candidates([*cands, *neighbours(cands)], filters)
        elif filters.active or params.recency_half_life_days > 0:
            # Vector labels are candidates only: check them against the filters and learn
            # their event times from the store.
            cands = self._backend.candidates(cands, filters)
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
            timed = time_mentions(self._backend, query.text, cands, filters, context.time_weight)
            explain = 2 * depth if query.explain else 0
            fused = with_context(fused, cands, context, explain=explain, timed=timed)
        labelled = self._hydrate(fused, depth, filters, explain=query.explain)
        if len(labelled) < depth and len(fused) == limit:
            fused = fuse_fn(vector, keyword, pool_cands, params, now, explain=explained)
            labelled = self._hydrate(fused, depth, filters, explain=query.explain)
        hits = [hit for _, hit in labelled]
        if query.rerank:
            hits = self._rerank(query, hits)
        hits = hits[: query.k]
        if record_access and hits:
            self._note_access(labelled, hits)
        return hits

    def _concurrent_reads(self) -> bool:
        concurrent: Callable[[], bool] | None = getattr(self._backend, "concurrent_reads", None)
        return concurrent is not None and concurrent()

    def _keyword_worker(self) -> ThreadPoolExecutor:
        worker = getattr(self, "_keyword_thread", None)
        if worker is None:
            from concurrent.futures import ThreadPoolExecutor  # 2 ms of import: on first use

            worker = self._keyword_thread = ThreadPoolExecutor(
                1, thread_name_prefix="magray-keywords"
            )
        return worker

    def _keyword_side(
        self, terms: list[str], filters: Filters, pool: int, plain_fusion: bool
    ) -> tuple[list[tuple[int, float]], list[Candidate]]:
        """The keyword ranking of a recall and, unless fusion is plain, its candidates."""
        if plain_fusion:
            return self._backend.keyword_ranking(terms, filters, pool), []
        hits = self._backend.keyword_search(terms, filters, pool)
        ranking = [(hit.num, hit.score) for hit in hits]
        return ranking, [Candidate(hit.num, hit.layer, hit.created_at) for hit in hits]

    def _note_access(self, labelled: list[tuple[int, Hit]], hits: list[Hit]) -> None:
        """Buffer one access per returned hit (written off the recall path)."""
        num_of = {hit.record.id: num for num, hit in labelled}
        self._accesses.add([num_of[h.record.id] for h in hits], time.time())

    def _vector_pool(
        self, qvec: npt.NDArray[np.float32], layers: tuple[Layer, ...], want: int, filters: Filters
    ) -> list[tuple[int, float, Layer]]:
        return vector_pool(self._backend, qvec, layers, want, filters)

    def _hydrate(
        self,
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
            rows = self._backend.fetch([num for num, _, _ in chunk], filters)
            for num, score, expl in chunk:
                row = rows.get(num)
                if row is not None:  # deleted or moved away since the index was read
                    hits.append((num, Hit(row.record, score, expl if explain else None)))
        return hits

    @property
    def reranker(self) -> Reranker | None:
        if self._reranker is None:
            from magray.embed import load_reranker

            self._reranker = load_reranker(self.settings)
        return self._reranker

    def _rerank(self, query: Query, hits: list[Hit]) -> list[Hit]:
        from dataclasses import replace

        reranker = self.reranker
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
                expl = replace(expl, rerank_score=float(scores[i]))
            out.append(Hit(hit.record, float(scores[i]), expl))
        return out

    # -- maintenance -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        layers = {
            str(layer): {
                "records": st.records,
                "text_bytes": st.text_bytes,
                "vector_bytes": st.vector_bytes,
                "pinned": st.pinned,
            }
            for layer, st in self.backend.layer_stats().items()
        }
        model, dim = self.stored_model
        out: dict[str, Any] = {
            "path": self.backend.location,
            "db_bytes": self.backend.size_bytes(),
            "layers": layers,
            "model": {"stored": model, "dim": dim, "active": self.settings.embed.model},
            "index": {},
        }
        if model is not None:
            try:
                self.check_model()
                health = self.backend.index_health()
                out["index"] = {str(k): v for k, v in health.items()}
                out["model"]["active"] = self.embedder.model_id
            except ModelError as exc:
                out["index"] = {"error": str(exc)}
        return out

    def sync_indexes(self) -> None:
        """Fold all pending vectors into the index files (after bulk writes)."""
        if self.stored_model[0] is not None:
            self.check_model()
            self.backend.sync_indexes()
