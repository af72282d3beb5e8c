"""``SqliteBackend``: the built-in memory store (SQLite + FTS5 + one HNSW file).

SQLite is the source of truth (records, tags, access history, lifecycle log, ingest
bookkeeping, metadata); the FTS5 keyword index is kept in step by triggers in the same
transaction, and the vector index files are derived (``index_sync``): repaired on open,
rebuilt by ``rebuild_indexes``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from magray.config import Settings
from magray.memory.backends import base
from magray.memory.backends.base import (
    ArchivedHistory,
    Candidate,
    Expiry,
    InsertResult,
    KeywordHit,
    LayerStats,
    LifecycleEntry,
    Promotion,
    QueryVector,
    Snapshot,
    SourceState,
    SourceWrite,
    SourceWriteResult,
    StoreCheck,
    StoredRow,
    Warn,
)
from magray.memory.backends.sqlite import backup as _backup
from magray.memory.backends.sqlite import edits
from magray.memory.backends.sqlite import imports as _imports
from magray.memory.backends.sqlite import keywords as _keywords
from magray.memory.backends.sqlite import lifecycle as _lifecycle
from magray.memory.backends.sqlite import sources as _sources
from magray.memory.backends.sqlite import vectors as _vectors
from magray.memory.backends.sqlite import verify as _verify
from magray.memory.backends.sqlite.index_sync import IndexSet
from magray.memory.backends.sqlite.inserts import insert_many
from magray.memory.backends.sqlite.store import Store
from magray.memory.backends.sqlite.vector_backlog import APART_DTYPES
from magray.memory.backends.sqlite.vector_codec import HALF_DTYPES, at_rest, float32_bytes
from magray.memory.records import Filters, Layer, NewRecord, Record
from magray.memory.transfer.manifest import BackupManifest
from magray.memory.vector_dtype import AUTO, DTYPE_META, resolve_dtype

log = logging.getLogger("magray")


class SqliteBackend:
    """One SQLite memory database and its derived index files (see ``base.Backend``)."""

    name = "sqlite"

    def concurrent_reads(self) -> bool:
        """Whether a keyword search may run on another thread while this one searches the
        vector index (``Memory.recall`` in hybrid mode): the connection is in SQLite's
        serialized mode; not inside a write transaction, whose writes it must see in order."""
        import sqlite3

        return sqlite3.threadsafety == 3 and not self.store.conn.in_transaction

    def __init__(
        self,
        db: Path,
        index_dir: Path,
        *,
        lock_timeout: float = 10.0,
        vector_dtype: str = AUTO,
        search_ef: int = 0,
        warn: Warn | None = None,
    ) -> None:
        _backup.finish_restore(db, index_dir, lock_timeout=lock_timeout)
        self.store = Store(db, lock_timeout=lock_timeout)
        self.index_dir = index_dir
        #: the index's scalar type: ``memory.vector_dtype``, or with ``auto`` the one the
        #: store has (f16 for a new store; ``magray.memory.vector_dtype``)
        dtype = self.vector_dtype = resolve_dtype(vector_dtype, self.store.meta, index_dir)
        self._dtype_recorded = False  # the store's meta names it (``_record_dtype``)
        self._half = dtype in HALF_DTYPES  # vectors at rest in float16 (vector_codec)
        # vectors kept in the store only until the index file holds them (vector_backlog)
        self._apart = dtype if dtype in APART_DTYPES else None
        self.search_ef = search_ef
        self.warn: Warn = warn or (lambda msg: log.warning("%s", msg))
        self._indexes: IndexSet | None = None
        #: embeds the text of records again (by label) when their vectors were lost with a
        #: damaged index file; set by the ``Memory`` that owns an embedder
        self.reembed: Callable[[list[int]], object] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, warn: Warn | None = None) -> SqliteBackend:
        return cls(
            settings.paths.memory_db,
            settings.paths.index_dir,
            lock_timeout=settings.memory.lock_timeout,
            vector_dtype=settings.memory.vector_dtype,
            search_ef=settings.memory.search_ef,
            warn=warn,
        )

    @property
    def location(self) -> str:
        return str(self.store.path)

    def close(self) -> None:
        self.store.close()

    # -- metadata ---------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        return self.store.meta(key)

    def set_meta(self, key: str, value: str) -> None:
        with self.store.write() as conn:
            Store.set_meta(conn, key, value)

    def embedding_model(self) -> tuple[str | None, int | None]:
        model = self.store.meta("embedding_model")
        dim = self.store.meta("embedding_dim")
        return model, int(dim) if dim else None

    def _record_dtype(self, conn: sqlite3.Connection | None = None) -> bool:
        """Write the index's scalar type to the store's meta table unless it is there, in
        ``conn``'s transaction or else in one of its own (before a vector is written under
        it: ``auto`` then keeps it). Returns whether ``conn`` got the write."""
        if self._dtype_recorded or (conn is None and self.store.conn.in_transaction):
            return False  # recorded, or left to the next write outside a transaction
        if self.store.meta(DTYPE_META) == self.vector_dtype:
            self._dtype_recorded = True
            return False
        if conn is not None:
            Store.set_meta(conn, DTYPE_META, self.vector_dtype)
            return True  # recorded once the caller's transaction commits
        with self.store.write() as own:
            Store.set_meta(own, DTYPE_META, self.vector_dtype)
        self._dtype_recorded = True
        return False

    def set_embedding_model(self, model_id: str, dim: int) -> None:
        with self.store.write() as conn:
            Store.set_meta(conn, "embedding_model", model_id)
            Store.set_meta(conn, "embedding_dim", str(dim))
        self._indexes = None

    # -- records ------------------------------------------------------------------------------
    def insert(
        self, items: Sequence[tuple[NewRecord, bytes]], *, model_id: str, dim: int, now: float
    ) -> list[InsertResult]:
        results: list[InsertResult] = []
        with self.store.write() as conn:
            if self.store.meta("embedding_model") is None:
                Store.set_meta(conn, "embedding_model", model_id)
                Store.set_meta(conn, "embedding_dim", str(dim))
            recorded = self._record_dtype(conn)
            pairs = [(item, at_rest(vector, self._half)) for item, vector in items]
            results.extend(insert_many(conn, pairs, model_id=model_id, now=now, apart=self._apart))
        self._dtype_recorded |= recorded
        return results

    def delete(self, nums: Iterable[int]) -> int:
        wanted = list(dict.fromkeys(nums))
        deleted = 0
        with self.store.write() as conn:
            for num in wanted:
                deleted += conn.execute("DELETE FROM records WHERE num = ?", (num,)).rowcount
        return deleted

    def update(
        self,
        num: int,
        *,
        now: float,
        pinned: bool | None = None,
        layer: Layer | None = None,
    ) -> None:
        edits.update(self.store, num, now=now, pinned=pinned, layer=layer)

    def replace_text(
        self, num: int, text: str, vector: bytes, *, model_id: str, now: float
    ) -> None:
        self._record_dtype()
        blob = at_rest(vector, self._half)
        edits.replace_text(
            self.store, num, text, blob, model_id=model_id, now=now, apart=self._apart
        )

    def record_access(self, nums: Sequence[int], now: float) -> None:
        self.store.record_accesses([(num, now) for num in nums])

    def record_accesses(self, events: Sequence[tuple[int, float]]) -> None:
        self.store.record_accesses(events)

    def resolve(self, id_or_prefix: str) -> StoredRow:
        return self.store.resolve(id_or_prefix)

    def fetch(self, nums: Iterable[int], filters: Filters | None = None) -> dict[int, StoredRow]:
        return self.store.fetch(nums, filters)

    def candidates(self, nums: Iterable[int], filters: Filters) -> dict[int, Candidate]:
        return self.store.candidates(nums, filters)

    def list_records(self, filters: Filters, *, limit: int, offset: int = 0) -> list[StoredRow]:
        return self.store.list_records(filters, limit=limit, offset=offset)

    def iter_records(
        self, filters: Filters | None = None, batch: int = 1000
    ) -> Iterator[StoredRow]:
        return self.store.iter_all(filters, batch)

    def count(self, filters: Filters | None = None) -> int:
        return self.store.count(filters)

    def has_sessions(self) -> bool:
        row = self.store.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM records WHERE session IS NOT NULL)"
        ).fetchone()
        return bool(row[0])

    def vectors(self, nums: Sequence[int]) -> dict[int, tuple[str | None, bytes]]:
        indexes = self.indexes
        if indexes is not None:  # a vector the store dropped is read from the index file
            return {
                num: (model, vec.astype("<f4").tobytes())
                for num, (model, vec) in indexes.source.stored(nums).items()
            }
        found = self.store.vectors(nums)
        return {num: (model, float32_bytes(blob)) for num, (model, blob) in found.items()}

    def layer_stats(self) -> dict[Layer, LayerStats]:
        _, dim = self.embedding_model()
        per = 4 if self.vector_dtype == "f32" else 2  # a vector at rest in the index file
        return _vectors.layer_stats(self.store, (dim or 0) * per + (per == 2))

    def size_bytes(self) -> int:
        db = self.store.path
        wal = db.with_name(db.name + "-wal")
        return (db.stat().st_size if db.exists() else 0) + (
            wal.stat().st_size if wal.exists() else 0
        )

    # -- search -------------------------------------------------------------------------------
    @property
    def indexes(self) -> IndexSet | None:
        """The vector indexes of the store's embedding model (None before any vector)."""
        if self._indexes is not None:
            return self._indexes  # re-read after set_embedding_model
        model, dim = self.embedding_model()
        if model is None or dim is None:
            return None
        current = self._indexes = IndexSet(
            self.store,
            self.index_dir,
            model_id=model,
            dim=dim,
            dtype=self.vector_dtype,
            warn=self.warn,
            ef=self.search_ef,
        )
        current.reembed = self.reembed
        return current

    def vector_search(
        self, layer: Layer, query: QueryVector, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        hits = self.vector_search_layers(query, (layer,), k, filters)
        return [(num, sim) for num, sim, _ in hits]

    def vector_search_layers(
        self, query: QueryVector, layers: tuple[Layer, ...], k: int, filters: Filters
    ) -> list[tuple[int, float, Layer]]:
        """The best ``k`` (label, cosine, layer) over ``layers`` (empty: all) in one search of
        the one index (see ``base.Backend.vector_search`` for what the labels promise)."""
        indexes = self.indexes
        if indexes is None:
            return []
        from magray.memory.backends.sqlite.index_search import search

        return search(indexes, query, layers, k, filters)

    def keyword_search(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[KeywordHit]:
        return _keywords.keyword_search(self.store, terms, filters, limit)

    def keyword_ranking(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[int, float]]:
        return _keywords.keyword_ranking(self.store, terms, filters, limit)

    # -- derived indexes ------------------------------------------------------------------------
    def index_health(self) -> dict[Layer, dict[str, int | str]]:
        indexes = self.indexes
        return {} if indexes is None else indexes.health()

    def sync_indexes(self) -> None:
        indexes = self.indexes
        if indexes is not None:
            indexes.sync()
        self.store.checkpoint()  # a bulk write's WAL would otherwise stay on disk at its peak

    def rebuild_indexes(self) -> dict[Layer, int]:
        _keywords.rebuild(self.store)
        indexes = self.indexes
        if indexes is None:
            return {}
        indexes.rebuild_all()
        return {layer: int(h["indexed"]) for layer, h in indexes.health().items()}

    def stale_vectors(self, model_id: str, *, after: int, limit: int) -> list[tuple[int, str]]:
        return _vectors.stale_vectors(self.store, model_id, after=after, limit=limit)

    def count_stale_vectors(self, model_id: str) -> int:
        return _vectors.count_stale_vectors(self.store, model_id)

    def set_vectors(self, vectors: Sequence[tuple[int, bytes]], model_id: str) -> None:
        if vectors:
            self._record_dtype()
        half = self._half
        rest = [(n, at_rest(b, half)) for n, b in vectors]
        _vectors.set_vectors(self.store, rest, model_id, self._apart)

    # -- lifecycle --------------------------------------------------------------------------------
    def access_times(self) -> dict[int, list[float]]:
        return _lifecycle.access_times(self.store)

    def live_records(self, layers: Sequence[Layer]) -> list[StoredRow]:
        return _lifecycle.live_records(self.store, layers)

    def archived_histories(self) -> list[ArchivedHistory]:
        return _lifecycle.archived_histories(self.store)

    def promote(
        self,
        scores: Mapping[str, float],
        promotions: Sequence[Promotion],
        *,
        now: float,
        meta: Mapping[str, str] | None = None,
    ) -> list[str]:
        return _lifecycle.promote(self.store, scores, promotions, now, meta or {})

    def expire(self, expiries: Sequence[Expiry], *, now: float) -> int:
        return _lifecycle.expire(self.store, expiries, now)

    def lifecycle_log(self) -> list[LifecycleEntry]:
        return _lifecycle.lifecycle_log(self.store)

    # -- ingest bookkeeping ---------------------------------------------------------------------
    def sources(self, project: str | None = None, layer: Layer | None = None) -> list[SourceState]:
        return _sources.sources(self.store, project, layer)

    def source(self, uri: str, project: str, layer: Layer) -> SourceState | None:
        return _sources.source(self.store, uri, project, layer)

    def rename_source(self, old_uri: str, new_uri: str, project: str, layer: Layer) -> None:
        _sources.rename_source(self.store, old_uri, new_uri, project, layer)

    def write_sources(
        self, files: Sequence[SourceWrite], *, model_id: str, dim: int, now: float
    ) -> SourceWriteResult:
        if any(f.chunks for f in files):
            self._record_dtype()
        if self._half:
            files = [
                replace(f, chunks=[replace(c, vector=at_rest(c.vector, True)) for c in f.chunks])
                for f in files
            ]
        return _sources.write_sources(
            self.store, files, model_id=model_id, dim=dim, now=now, apart=self._apart
        )

    def forget_sources(self, uris: Sequence[str], project: str, layer: Layer) -> int:
        return _sources.forget_sources(self.store, uris, project, layer)

    def source_chunk_count(self, uri: str, project: str, layer: Layer) -> int:
        return _sources.source_chunk_count(self.store, uri, project, layer)

    def stored_hashes(self, layer: Layer, project: str, hashes: Iterable[str]) -> set[str]:
        return _sources.stored_hashes(self.store, layer, project, hashes)

    # -- export / import ----------------------------------------------------------------------
    def is_duplicate(self, record_id: str, layer: Layer, project: str, chash: str) -> bool:
        return _imports.is_duplicate(self.store, record_id, layer, project, chash)

    def insert_exact(
        self, rows: Iterable[tuple[Record, bytes]], *, model_id: str, dim: int
    ) -> tuple[int, int]:
        self._record_dtype()
        half = self._half
        rest = ((record, at_rest(blob, half)) for record, blob in rows)
        return _imports.insert_exact(
            self.store, rest, model_id=model_id, dim=dim, apart=self._apart
        )

    # -- backup and integrity -------------------------------------------------------------------
    def snapshot(self, folder: Path) -> Snapshot:
        return _backup.snapshot(self.store, self.index_dir, folder)

    def verify(self) -> StoreCheck:
        return _verify.verify(self.store, self.indexes)


class SqliteKind:
    """The registry entry of the SQLite backend."""

    name = "sqlite"

    def open(self, settings: Settings, *, warn: Warn | None = None) -> base.Backend:
        return SqliteBackend.from_settings(settings, warn=warn)

    def holds_records(self, settings: Settings) -> bool:
        return _backup.live_records(settings.paths.memory_db) != 0

    def restore(self, settings: Settings, manifest: BackupManifest, *, force: bool) -> None:
        _backup.restore(settings, manifest, force=force)


KIND = SqliteKind()
