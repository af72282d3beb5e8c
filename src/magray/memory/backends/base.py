"""The storage seam of the memory: one ``Backend`` owns the records, the keyword index and
the vector indexes of one store.

Everything above this seam (``Memory``, lifecycle, ingest, backup, export/import, verify)
speaks only to the protocol below; everything below it (SQL, files, locks) belongs to one
backend. The built-in backend is SQLite + FTS5 + HNSW files (``backends/sqlite``); a second
one is added by implementing ``Backend`` and registering it in ``backends/__init__.py``.

Conventions every method follows:

- A record has a public ``id`` (16 base32 characters) and an internal integer *label*: the
  key of the vector and keyword indexes. Labels are positive, assigned in insertion order
  and never reused, so a stale index entry can never point at another record.
- Stored vectors cross the seam as little-endian float32 bytes; query vectors as 1-d
  ``numpy.float32`` arrays of unit length. Similarity is cosine (the dot product).
- Every write is one transaction under the store's single-writer lock: it commits whole or
  not at all. Readers never wait for the writer. A write that cannot take the lock within
  ``memory.lock_timeout`` raises ``StoreLockedError``; a full or failing disk, a damaged
  store or any other failure of the store raises ``StoreError`` (nothing is half-written).
- ``Filters`` mean the same everywhere: ``layers`` any of (empty: all), ``tags`` all of,
  ``kind`` equal, ``exclude_kinds`` none of, ``project`` and ``session`` equal (empty or
  None: no restriction), ``created_after`` ≤ created_at < ``created_before``.
- Deduplication key: (layer, project or "", content hash). At most one record per key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from magray.memory.backends.values import (
    ArchivedHistory,
    Candidate,
    Expiry,
    InsertResult,
    KeywordHit,
    LayerStats,
    LifecycleEntry,
    Promotion,
    Snapshot,
    SourceChunk,
    SourceState,
    SourceWrite,
    SourceWriteResult,
    StoreCheck,
    StoredRow,
)
from magray.memory.records import Filters, Layer, NewRecord, Record

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.memory.transfer.manifest import BackupManifest

QueryVector = npt.NDArray[np.float32]
Warn = Callable[[str], None]

__all__ = [
    "ArchivedHistory",
    "Backend",
    "BackendKind",
    "Candidate",
    "Expiry",
    "InsertResult",
    "KeywordHit",
    "LayerStats",
    "LifecycleEntry",
    "Promotion",
    "QueryVector",
    "Snapshot",
    "SourceChunk",
    "SourceState",
    "SourceWrite",
    "SourceWriteResult",
    "StoreCheck",
    "StoredRow",
    "Warn",
]


# -- the protocol -------------------------------------------------------------------------
@runtime_checkable
class Backend(Protocol):
    """One memory store: records, their keyword index and their vector indexes."""

    name: str  # the registry key, e.g. "sqlite"

    @property
    def location(self) -> str:
        """Where the store lives, for messages and ``stats`` (a path, or a DSN without
        its password)."""
        ...

    def close(self) -> None:
        """Release connections, locks and files. Idempotent; the object is unusable after."""
        ...

    # -- metadata -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """The stored value of ``key`` in the store's metadata, or None when unset."""
        ...

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing it) in one write transaction.

        Raises:
            StoreLockedError: another process holds the writer lock past the timeout.
        """
        ...

    def embedding_model(self) -> tuple[str | None, int | None]:
        """(model id, dimension) of the vectors in the store; (None, None) before the first
        vector is written."""
        ...

    def set_embedding_model(self, model_id: str, dim: int) -> None:
        """Record that the store's vectors are now of ``model_id`` (after a re-embed); the
        vector indexes follow it on their next use."""
        ...

    # -- records: writes --------------------------------------------------------------------
    def insert(
        self, items: Sequence[tuple[NewRecord, bytes]], *, model_id: str, dim: int, now: float
    ) -> list[InsertResult]:
        """Store ``items`` (record, vector) in ONE transaction; one result per item, in order.

        A new record gets a fresh id and label, ``created_at = updated_at = layer_since =
        now``, ``occurred_at`` as the item gives it (None: not known), access count 0. An
        item whose dedup key (layer, project, content hash) is already stored — also by an
        earlier item of the same batch — is not duplicated: the stored record gets one more
        access at ``now`` (count, ``last_access_at`` and the
        access history), ``updated_at = now``, its tags become the union (stored order
        first), importance and pinned their maximum; its vector is replaced only when it
        was of another model. The first write to an empty store records ``model_id`` and
        ``dim`` as the store's embedding model. Raises StoreLockedError / StoreError.
        """
        ...

    def delete(self, nums: Iterable[int]) -> int:
        """Delete the records labelled ``nums`` (with their tags and access history) in one
        transaction; labels that do not exist are ignored. Returns how many were deleted."""
        ...

    def update(
        self,
        num: int,
        *,
        now: float,
        pinned: bool | None = None,
        layer: Layer | None = None,
    ) -> None:
        """Pin or unpin the record labelled ``num``, or move it to ``layer`` (then
        ``layer_since = now``); ``updated_at = now``; one transaction. None leaves a field.

        Raises:
            NotFoundError: no record has that label.
            UsageError: ``layer`` already holds a record with the same project and content
                hash (the message names its id).
        """
        ...

    def replace_text(
        self, num: int, text: str, vector: bytes, *, model_id: str, now: float
    ) -> None:
        """Give the record labelled ``num`` a new text and vector, keeping its id, layer,
        tags, times and access history (``updated_at = now``); its content hash, keyword
        entry and index entry follow. One transaction.

        Raises:
            NotFoundError: no record has that label.
            UsageError: another record of its layer and project already has that text.
        """
        ...

    def record_access(self, nums: Sequence[int], now: float) -> None:
        """Count one access at ``now`` for each label (best effort).

        Never blocks and never raises for a busy store: when the writer lock or the
        database is held elsewhere the access is skipped. A crash may lose the last few
        accesses, never a record.
        """
        ...

    def record_accesses(self, events: Sequence[tuple[int, float]]) -> None:
        """Count each (label, time) access, as ``record_access`` does, in one write: the
        form ``Memory`` uses to write the access statistics it buffers off the recall path.
        """
        ...

    # -- records: reads -----------------------------------------------------------------------
    def resolve(self, id_or_prefix: str) -> StoredRow:
        """The record whose id is ``id_or_prefix`` (case-insensitive, trimmed) or the only
        one whose id starts with it.

        Raises:
            UsageError: fewer than 4 characters, or the prefix matches several ids (the
                message lists up to 5 of them).
            NotFoundError: no id matches.
        """
        ...

    def fetch(self, nums: Iterable[int], filters: Filters | None = None) -> dict[int, StoredRow]:
        """The records labelled ``nums`` that exist and match ``filters``, by label."""
        ...

    def candidates(self, nums: Iterable[int], filters: Filters) -> dict[int, Candidate]:
        """Like ``fetch`` but only label, layer, time (``occurred_at``, else ``created_at``)
        and session (a narrow, fast read)."""
        ...

    def list_records(self, filters: Filters, *, limit: int, offset: int = 0) -> list[StoredRow]:
        """Records matching ``filters``, newest first (created_at, then label, descending),
        skipping ``offset`` and returning at most ``limit``."""
        ...

    def iter_records(
        self, filters: Filters | None = None, batch: int = 1000
    ) -> Iterator[StoredRow]:
        """Every record matching ``filters`` in label order, read ``batch`` at a time, so
        memory use does not grow with the store."""
        ...

    def count(self, filters: Filters | None = None) -> int:
        """How many records match ``filters``."""
        ...

    def has_sessions(self) -> bool:
        """Whether any record belongs to a session (a conversation): recall's session
        context is skipped for stores without one. Must be cheap (an index lookup)."""
        ...

    def vectors(self, nums: Sequence[int]) -> dict[int, tuple[str | None, bytes]]:
        """(embedding model, float32 bytes) of each label that holds a vector."""
        ...

    def layer_stats(self) -> dict[Layer, LayerStats]:
        """Size facts of every layer (all three keys present)."""
        ...

    def size_bytes(self) -> int:
        """Bytes the store's own files (or tables) take, without the derived indexes."""
        ...

    # -- search -----------------------------------------------------------------------------
    def vector_search(
        self, layer: Layer, query: QueryVector, k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine) of ``layer``'s vectors nearest to ``query``, best first,
        searched among the vectors of the store's embedding model.

        Labels are candidates only: with active filters the result holds up to ``4·k``
        labels that may not all match, and a record deleted or moved to another layer since
        this process last read the index may still appear. The caller re-reads them
        (``candidates``/``fetch``) with the filters. An empty store or layer gives []. The
        search is approximate (recall ≥ 0.95 at the default settings); filtered searches
        over small sets may be exact.
        """
        ...

    def keyword_search(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[KeywordHit]:
        """Up to ``limit`` records matching ANY of ``terms`` (lower-case words, see
        ``memory.search.keywords``), best first by a BM25-like score (higher is better),
        all matching ``filters``.

        Matching is by whole word, case-insensitive in every script ("Кошка" matches
        "кошка"), ignoring diacritics; a backend may also stem. No terms give [].
        """
        ...

    def keyword_ranking(
        self, terms: Sequence[str], filters: Filters, limit: int
    ) -> list[tuple[int, float]]:
        """``keyword_search`` as (label, score) pairs, same hits in the same order: what a
        recall that needs no layer or time of its matches asks for (a backend may then
        skip reading the records)."""
        ...

    # -- derived indexes ----------------------------------------------------------------------
    def index_health(self) -> dict[Layer, dict[str, int | str]]:
        """Per layer: ``indexed``, ``backlog``, ``searchable``, ``expected`` vectors and
        ``file`` (where the index lives). Opening repairs an index that disagrees with the
        records (with a warning)."""
        ...

    def sync_indexes(self) -> None:
        """Fold every pending write into the vector indexes now (after bulk writes)."""
        ...

    def rebuild_indexes(self) -> dict[Layer, int]:
        """Rebuild the keyword index and every vector index from the records; returns the
        vectors indexed per layer ({} when the store holds no vectors)."""
        ...

    def stale_vectors(self, model_id: str, *, after: int, limit: int) -> list[tuple[int, str]]:
        """(label, text) of up to ``limit`` records with a label above ``after`` whose vector
        is missing or of another model than ``model_id``, in label order."""
        ...

    def count_stale_vectors(self, model_id: str) -> int:
        """How many records ``stale_vectors`` would return in all."""
        ...

    def set_vectors(self, vectors: Sequence[tuple[int, bytes]], model_id: str) -> None:
        """Replace the vectors of the given labels by ``model_id`` ones, in one transaction."""
        ...

    # -- lifecycle ----------------------------------------------------------------------------
    def access_times(self) -> dict[int, list[float]]:
        """The kept access times of every live record, ascending, by label: all of them, or
        the first ``KEEP_FIRST`` and last ``KEEP_LAST`` (``magray.memory.access.bounded``)."""
        ...

    def live_records(self, layers: Sequence[Layer]) -> list[StoredRow]:
        """Every record of ``layers``, in label order."""
        ...

    def archived_histories(self) -> list[ArchivedHistory]:
        """The histories that expired records left behind."""
        ...

    def promote(
        self,
        scores: Mapping[str, float],
        promotions: Sequence[Promotion],
        *,
        now: float,
        meta: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Apply one promotion run in ONE transaction; returns the action per promotion.

        Sets ``promotion_score`` of every record id in ``scores`` and stores ``meta``. Each
        promotion moves its record to ``to_layer`` (``layer_since = updated_at = now``:
        "promote"), unless the target layer already holds the same dedup key: then the
        record is merged into that twin (access counts add up, its access history moves
        over, pinned and importance take the maximum) and deleted ("merge"). Every one is
        written to the lifecycle log with its score and reasons. A label that no longer
        exists is skipped (action "gone", not logged).
        """
        ...

    def expire(self, expiries: Sequence[Expiry], *, now: float) -> int:
        """Delete the records in ONE transaction, archiving each one's history first
        (``archived_histories``, replacing an older archive of the same id) and logging an
        "expire" line with its reason. Returns how many were deleted."""
        ...

    def lifecycle_log(self) -> list[LifecycleEntry]:
        """The lifecycle log, oldest first."""
        ...

    # -- ingest bookkeeping ------------------------------------------------------------------
    def sources(self, project: str | None = None, layer: Layer | None = None) -> list[SourceState]:
        """Bookkeeping rows of ingested files, by uri; None means any project / layer."""
        ...

    def source(self, uri: str, project: str, layer: Layer) -> SourceState | None:
        """The bookkeeping row of one ingested file, or None if it was never ingested."""
        ...

    def rename_source(self, old_uri: str, new_uri: str, project: str, layer: Layer) -> None:
        """Move a file's bookkeeping row and its records from ``old_uri`` to ``new_uri``
        (in one transaction); a row already at ``new_uri`` wins over the old one."""
        ...

    def write_sources(
        self, files: Sequence[SourceWrite], *, model_id: str, dim: int, now: float
    ) -> SourceWriteResult:
        """Write whole files in ONE transaction.

        For each file: its stored chunks (same uri, project, layer) whose content is not
        among the new chunks are deleted; chunks whose content is already stored there keep
        their record (offsets and ``updated_at`` updated); the others are inserted as by
        ``insert``; its bookkeeping row is upserted with ``content_hash``, the chunk count
        and ``ingested_at = now``.
        """
        ...

    def forget_sources(self, uris: Sequence[str], project: str, layer: Layer) -> int:
        """Delete the files' records and bookkeeping rows in one transaction; returns the
        number of records deleted."""
        ...

    def source_chunk_count(self, uri: str, project: str, layer: Layer) -> int:
        """How many records of ``layer`` and ``project`` come from ``uri``."""
        ...

    def stored_hashes(self, layer: Layer, project: str, hashes: Iterable[str]) -> set[str]:
        """The content hashes among ``hashes`` that ``layer`` and ``project`` hold."""
        ...

    # -- export / import ---------------------------------------------------------------------
    def is_duplicate(self, record_id: str, layer: Layer, project: str, chash: str) -> bool:
        """Whether ``record_id`` exists or the dedup key (layer, project, hash) is taken."""
        ...

    def insert_exact(
        self, rows: Iterable[tuple[Record, bytes]], *, model_id: str, dim: int
    ) -> tuple[int, int]:
        """Insert exported records keeping id, timestamps, stats and score, in ONE
        transaction (all or nothing); the vector is stored as of ``model_id``.

        A record whose id exists or whose dedup key is taken is skipped. Sets the store's
        embedding model when unset. Returns (imported, duplicates).
        """
        ...

    # -- backup and integrity -----------------------------------------------------------------
    def snapshot(self, folder: Path) -> Snapshot:
        """Write a consistent copy of the store (and, optionally, its derived indexes, never
        ahead of the copy) into the empty ``folder`` while other processes keep working.

        Raises:
            BackupError: the copy failed.
        """
        ...

    def verify(self) -> StoreCheck:
        """Check the store without changing anything user-visible: its own integrity, the
        keyword index, content hashes, vector dimensions and models, and that every vector
        index holds exactly the labels it should."""
        ...


class BackendKind(Protocol):
    """A registered backend: opens stores and restores backups of its kind."""

    name: str

    def open(self, settings: Settings, *, warn: Warn | None = None) -> Backend:
        """Open (creating or migrating) the store that ``settings`` name.

        Raises:
            SchemaError: the store was written by a newer MAGRAY.
            StoreError: the store cannot be opened (the message says why and what to do).
        """
        ...

    def holds_records(self, settings: Settings) -> bool:
        """Whether the store that ``settings`` name holds a record, found without opening
        it: a store that does not exist yet is not created (False), one that cannot be
        read counts as holding records.

        Raises:
            StoreError: the server of the store cannot be reached.
        """
        ...

    def restore(self, settings: Settings, manifest: BackupManifest, *, force: bool) -> None:
        """Replace the store with the backup ``manifest`` describes (already read; every
        file is checked here against its size and sha256 first), all or nothing.

        Raises:
            BackupError: the backup is damaged, the store holds records and ``force`` is
                not set, or another process has the store open. Nothing is changed.
        """
        ...
