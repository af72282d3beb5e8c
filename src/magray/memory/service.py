"""The ``Memory`` facade: remember, recall, get, list, forget, stats.

Storage is the backend's (``memory.backends``, setting ``memory.backend``); lifecycle
(``memory.lifecycle``), ingest (``memory.ingest``), backups and JSONL transfer
(``memory.transfer``) and maintenance work through this class and its ``backend``.
Remembering is ``memory.ingest.remember`` and recall is ``memory.search.recall``; the
methods here delegate to them.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.config import Settings
from magray.embed.base import Embedder, Reranker
from magray.errors import DimensionMismatchError, ModelError, UsageError
from magray.memory.access import AccessBuffer
from magray.memory.backends import Backend, open_backend
from magray.memory.backends.base import StoredRow, Warn
from magray.memory.ingest.remember import EMBED_BATCH, RememberResult, check_text, remember_many
from magray.memory.rank.context import ContextParams
from magray.memory.records import MAX_INT, Filters, Hit, Layer, NewRecord, Query, Record
from magray.memory.search.fusion import FusionParams
from magray.memory.search.recall import Recall, context_params, fusion_params

log = logging.getLogger("magray")

Progress = Callable[[int, int | None], None]


_OPEN: weakref.WeakSet[Memory] = weakref.WeakSet()  # written at exit if never closed


@atexit.register
def _flush_at_exit() -> None:
    for memory in list(_OPEN):
        with contextlib.suppress(Exception):  # stats never fail a process
            memory.flush_access()


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
        self._accesses = AccessBuffer(self._backend.record_accesses)  # written off recall
        self._recall = Recall(self, self._backend, self._accesses)
        if hasattr(self._backend, "reembed"):  # a store that can lose vectors with a file
            self._backend.reembed = self._reembed_lost
        _OPEN.add(self)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._accesses.close()
        recall = getattr(self, "_recall", None)
        if recall is not None:
            recall.close()
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
        recall = getattr(self, "_recall", None)
        if recall is not None:
            recall.close()
        self._backend = backend
        self._accesses = AccessBuffer(backend.record_accesses)
        self._recall = Recall(self, backend, self._accesses)

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
        return remember_many(self, items, progress)

    def forget(self, id_or_prefix: str) -> Record:
        stored = self.backend.resolve(id_or_prefix)
        self.backend.delete([stored.num])
        return stored.record

    def pin(self, id_or_prefix: str, pinned: bool = True) -> Record:
        """Pin (never expires) or unpin a record; one already so is left as it is."""
        stored = self.backend.resolve(id_or_prefix)
        if stored.record.pinned is pinned:
            return stored.record
        self.backend.update(stored.num, now=time.time(), pinned=pinned)
        return self.backend.resolve(stored.record.id).record

    def move(self, id_or_prefix: str, layer: Layer) -> Record:
        """Move a record to ``layer`` by hand (its TTL counts from now); a record already in
        ``layer`` is left as it is (its TTL keeps counting from when it got there)."""
        stored = self.backend.resolve(id_or_prefix)
        if stored.record.layer is layer:
            return stored.record
        self.backend.update(stored.num, now=time.time(), layer=layer)
        return self.backend.resolve(stored.record.id).record

    def edit(self, id_or_prefix: str, text: str) -> Record:
        """Replace a record's text (re-embedded), keeping its id, layer, tags and history."""
        stored = self.backend.resolve(id_or_prefix)
        check_text(text)  # the text only: a label stored by an older version stays as it is
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
        return fusion_params(self.settings)

    def context_params(self) -> ContextParams:
        return context_params(self.settings)

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
        return self._recall.vector_candidates(qvec, k, filters, layers)

    def recall(self, query: Query, *, record_access: bool = True) -> list[Hit]:
        """Hybrid (or vector / keyword) search with filters; bumps access stats of the hits.

        Fusion works on labels, scores, layers and times only; full records are read for
        the hits that are returned. Every list holds at least the best ``NORM_DEPTH``
        candidates (over all layers for vectors), so a hit's rank does not depend on ``k``.
        Access statistics are buffered and written off this path (``memory.access``).
        The path itself is ``memory.search.recall``.
        """
        return self._recall.run(query, record_access=record_access)

    @property
    def reranker(self) -> Reranker | None:
        if self._reranker is None:
            from magray.embed import load_reranker

            self._reranker = load_reranker(self.settings)
        return self._reranker

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
