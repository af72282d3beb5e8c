"""The values that cross the storage seam (``base.Backend``): rows, results, candidates,
hits, sizes, ingest bookkeeping, lifecycle moves and logs, checks and snapshots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from magray.memory.records import Layer, NewRecord, Record


@dataclass(frozen=True, slots=True)
class StoredRow:
    """A record plus its internal index label."""

    num: int
    record: Record


@dataclass(frozen=True, slots=True)
class InsertResult:
    """What ``Backend.insert`` did with one new record."""

    num: int
    id: str
    layer: Layer
    created: bool  # False: an identical record (same dedup key) was bumped instead


@dataclass(frozen=True, slots=True)
class Candidate:
    """What fusion needs to know about one record: its label, layer, time (when it happened,
    else when it was stored) and session."""

    num: int
    layer: Layer
    created_at: float
    session: str | None = None


@dataclass(frozen=True, slots=True)
class KeywordHit:
    """One keyword match: label, BM25-like score (higher is better), layer, created_at."""

    num: int
    score: float
    layer: Layer
    created_at: float


@dataclass(frozen=True, slots=True)
class LayerStats:
    """Size facts of one layer."""

    records: int
    text_bytes: int  # UTF-8 bytes of the texts
    vector_bytes: int  # bytes of the stored (float32) vectors
    pinned: int


@dataclass(frozen=True, slots=True)
class SourceState:
    """The bookkeeping row of one ingested file (``uri`` is its stored path)."""

    uri: str
    project: str  # "" for none
    layer: Layer
    content_hash: str  # of the whole file at its last ingest
    chunks: int  # chunks made of it at its last ingest


@dataclass(frozen=True, slots=True)
class SourceChunk:
    """One chunk of a file to store, with its vector (little-endian float32 bytes)."""

    item: NewRecord
    vector: bytes


@dataclass(frozen=True, slots=True)
class SourceWrite:
    """A file to (re)write: its chunks replace whatever the store holds for its uri."""

    uri: str
    project: str
    layer: Layer
    content_hash: str
    chunks: Sequence[SourceChunk]


@dataclass
class SourceWriteResult:
    """Chunk counts of ``Backend.write_sources``."""

    added: int = 0
    kept: int = 0  # unchanged chunks kept (offsets updated, history intact)
    removed: int = 0


@dataclass(frozen=True, slots=True)
class Promotion:
    """Move the record labelled ``num`` (public ``record_id``) up to ``to_layer``."""

    num: int
    record_id: str
    to_layer: Layer
    score: float
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Expiry:
    """Delete the record labelled ``num`` for ``reason`` (its history is archived)."""

    num: int
    reason: str


@dataclass(frozen=True, slots=True)
class ArchivedHistory:
    """What an expired record left behind for promotion learning."""

    record_id: str
    layer: Layer
    created_at: float
    layer_since: float
    importance: float
    pinned: bool
    access_times: tuple[float, ...]  # ascending
    archived_at: float


@dataclass(frozen=True, slots=True)
class LifecycleEntry:
    """One line of the lifecycle log."""

    at: float
    record_id: str
    action: str  # "promote", "merge" or "expire"
    from_layer: Layer
    to_layer: Layer | None
    score: float | None
    reasons: tuple[str, ...]


@dataclass
class StoreCheck:
    """What ``Backend.verify`` found: facts by name and one sentence per problem."""

    checked: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What ``Backend.snapshot`` wrote into a backup folder."""

    files: tuple[str, ...]  # paths relative to the folder, the store's own file first
    schema_version: int
    embedding_model: str | None
    embedding_dim: int | None
    counts: Mapping[str, int]  # records per layer name
