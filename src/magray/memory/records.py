"""The values of the memory: layers, records, queries and hits."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from magray.timefmt import exact_iso, iso

MAX_INT = 2**63 - 1  # the largest integer SQLite stores
MIN_TIME = -62_135_596_800.0  # 0001-01-01T00:00:00Z: timestamps outside the years 1‥9999
MAX_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z  cannot be shown as dates
MAX_TEXT_CHARS = 1_000_000  # the longest text one memory holds (embedders read far less)
MAX_TAG_CHARS = 200  # the longest tag (and kind): a label, not a text
MIN_ID_PREFIX = 4  # the fewest characters of an id that name a record
_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# The control characters: C0 (tab and newline too), DEL and C1. A label (a record's kind,
# tags, project and session) never holds one: it is one line that prints as itself, and a
# NUL, an escape sequence or a newline in it is a client's bug or an attack on a terminal.
# A record's text may hold tabs and newlines (and other C0 characters), never NUL.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The invisible characters that change how a label looks without being seen: the bidi
# controls (embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, the marks
# U+200E, U+200F and U+061C) and the zero-width ones (U+200B-U+200D, U+2060, U+FEFF).
# "ops" and "o\u200bps", or a tag U+202E turns around, print alike in a listing; a label
# holds none of them. A record's text may: there they are content (Arabic, Hebrew).
_INVISIBLE = r"\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
_UNSEEN = re.compile(f"[{_INVISIBLE}]")
#: the labels' rule as a JSON Schema pattern (the API document shows it)
LABEL_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f{_INVISIBLE}]*$"


def _exact_time(ts: float | None) -> str | None:
    return None if ts is None else exact_iso(ts)


def control_char(value: str) -> str | None:
    """The first control character in ``value`` (C0, DEL or C1), or None."""
    found = _CONTROL.search(value)
    return None if found is None else found.group()


def invisible_char(value: str) -> str | None:
    """The first bidi control or zero-width character in ``value``, or None."""
    found = _UNSEEN.search(value)
    return None if found is None else found.group()


def label_refusal(value: str, what: str) -> str | None:
    """Why ``value`` is no label (one sentence naming ``what``, the value and the
    character by its code point, e.g. U+202E), or None when it is one."""
    shown = value if len(value) <= 40 else value[:40] + "…"
    char = control_char(value)
    if char is not None:
        return (
            f"{what} {shown!r} holds a control character (U+{ord(char):04X}); labels are"
            " printable text on one line: remove it."
        )
    char = invisible_char(value)
    if char is not None:
        return (
            f"{what} {shown!r} holds an invisible character (U+{ord(char):04X}, a bidi or"
            " zero-width control) that makes it look like another label: remove it."
        )
    return None


def check_label(value: str, what: str) -> str:
    """``value`` if it is a label without control, bidi or zero-width characters; else a
    UsageError naming ``what`` ("the kind", "a tag"...), the value and the character. The
    one check of the rule: the memory's writes and filters, the CLI and the server all
    come through it."""
    refusal = label_refusal(value, what)
    if refusal is None:
        return value
    from magray.errors import UsageError

    raise UsageError(refusal)


def new_id() -> str:
    """A random 16-character base32 record id (80 bits): short prefixes are unique in
    practice; ordering lives in ``created_at``, not in the id."""
    value = secrets.randbits(80)
    chars = []
    for _ in range(16):
        chars.append(_ID_ALPHABET[value & 31])
        value >>= 5
    return "".join(chars)


class Layer(StrEnum):
    """The three memory layers, from short-lived to permanent."""

    INTERACT = "interact"
    INSIGHTS = "insights"
    ASSETS = "assets"

    @property
    def next(self) -> Layer | None:
        """The layer a record of this layer is promoted to, or None for Assets."""
        order = list(Layer)
        i = order.index(self)
        return order[i + 1] if i + 1 < len(order) else None


# Kinds of records MAGRAY writes itself: asked questions with their answers, and agent runs.
# Searches leave them out unless asked to include them, so they never outrank what the
# user stored.
GENERATED_KINDS = ("exchange", "agent_run")


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    VECTOR = "vector"
    KEYWORD = "keyword"


@dataclass(frozen=True, slots=True)
class Source:
    """Where an ingested chunk came from: a path or URL plus offsets."""

    uri: str
    start: int | None = None  # character offset of the chunk's first character
    end: int | None = None  # character offset one past the chunk's last character
    line_start: int | None = None
    line_end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "start": self.start,
            "end": self.end,
            "line_start": self.line_start,
            "line_end": self.line_end,
        }


@dataclass(frozen=True, slots=True)
class Record:
    """One memory."""

    id: str
    text: str
    layer: Layer
    kind: str
    tags: tuple[str, ...]
    project: str | None
    session: str | None
    source: Source | None
    created_at: float
    updated_at: float
    layer_since: float  # when the record entered its current layer (TTL counts from here)
    last_access_at: float | None
    access_count: int
    importance: float
    pinned: bool
    promotion_score: float | None
    content_hash: str
    embedding_model: str | None
    occurred_at: float | None = None  # when it happened, if given (``created_at``: stored)

    @property
    def event_at(self) -> float:
        """When the memory happened: ``occurred_at`` if given, else when it was stored."""
        return self.created_at if self.occurred_at is None else self.occurred_at

    def to_dict(self, *, exact: bool = False) -> dict[str, Any]:
        """The record as JSON data (times as ISO 8601): ``memory get --json``, the server's
        ``GET /v1/memories/{id}`` and the memory tools all print this shape.

        ``exact`` gives the export's form: times with every digit of their fraction (so an
        import rebuilds the very same floats) plus ``layer_since`` and ``content_hash``.
        """
        when = _exact_time if exact else iso
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "layer": str(self.layer),
            "kind": self.kind,
            "tags": list(self.tags),
            "project": self.project,
            "session": self.session,
            "source": None if self.source is None else self.source.to_dict(),
            "created_at": when(self.created_at),
            "occurred_at": when(self.occurred_at),
            "updated_at": when(self.updated_at),
        }
        if exact:
            out["layer_since"] = when(self.layer_since)
        out.update(
            last_access_at=when(self.last_access_at),
            access_count=self.access_count,
            importance=self.importance,
            pinned=self.pinned,
            promotion_score=self.promotion_score,
        )
        if exact:
            out["content_hash"] = self.content_hash
        out["embedding_model"] = self.embedding_model
        return out


@dataclass(frozen=True, slots=True)
class NewRecord:
    """What a caller supplies to remember something."""

    text: str
    layer: Layer = Layer.INTERACT
    kind: str = "note"
    tags: tuple[str, ...] = ()
    project: str | None = None
    session: str | None = None
    source: Source | None = None
    importance: float = 0.5
    pinned: bool = False
    occurred_at: float | None = None  # when it happened (Unix seconds); None = when stored


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions on what recall, list or export may return."""

    layers: tuple[Layer, ...] = ()  # empty = all layers
    tags: tuple[str, ...] = ()  # a record must carry all of them
    kind: str | None = None
    project: str | None = None
    session: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    exclude_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        import json

        from magray.errors import UsageError, Words

        if self.kind is not None and not self.kind.strip():
            raise UsageError("the kind to filter by is empty; give the kind, or leave it out.")
        for label, what in (
            (self.kind, "the kind to filter by"),
            (self.project, "the project to filter by"),
            (self.session, "the session to filter by"),
            *((tag, "the tag to filter by") for tag in self.tags),
        ):
            if label is not None:
                check_label(label, what)
        if any(not tag.strip() for tag in self.tags):
            raise UsageError("a tag to filter by is empty; give the tag, or leave it out.")
        for tag in self.tags:
            if "," in tag:  # tags never hold a comma, so this filter could match nothing
                names = [t.strip() for t in tag.split(",") if t.strip()] or ["NAME"]
                each = Words(" ".join(f"--tag {t}" for t in names), f'"tags": {json.dumps(names)}')
                raise UsageError(
                    f"a tag never holds a comma (got {tag!r}); give each tag on its own (",
                    each,
                    ").",
                )
        after, before = self.created_after, self.created_before
        if after is not None and before is not None and after > before:
            raise UsageError(
                f"the time range is inverted: created after {iso(after)} is later than created"
                f" before {iso(before)}; swap the two."
            )

    @property
    def selective(self) -> bool:
        """Whether the filters may leave only a small part of a layer (exclusions do not)."""
        return bool(
            self.tags
            or self.kind
            or self.project
            or self.session
            or self.created_after is not None
            or self.created_before is not None
        )

    @property
    def active(self) -> bool:
        return bool(
            self.tags
            or self.kind
            or self.exclude_kinds
            or self.project
            or self.session
            or self.created_after is not None
            or self.created_before is not None
        )


@dataclass(frozen=True, slots=True)
class Query:
    """A recall request."""

    text: str
    k: int = 10
    mode: SearchMode = SearchMode.HYBRID
    filters: Filters = field(default_factory=Filters)
    rerank: bool = False
    explain: bool = False


@dataclass(frozen=True, slots=True)
class Explanation:
    """How a hit's fused score came about (for ``--explain``)."""

    vector_rank: int | None = None
    vector_score: float | None = None  # cosine similarity
    keyword_rank: int | None = None
    keyword_score: float | None = None  # BM25 (higher is better)
    fused_score: float = 0.0
    layer_weight: float = 1.0
    recency_factor: float = 1.0
    rerank_score: float | None = None
    context_score: float | None = None  # what neighbours and session added

    def to_dict(self) -> dict[str, Any]:
        return {
            "vector_rank": self.vector_rank,
            "vector_score": self.vector_score,
            "keyword_rank": self.keyword_rank,
            "keyword_score": self.keyword_score,
            "fused_score": self.fused_score,
            "layer_weight": self.layer_weight,
            "recency_factor": self.recency_factor,
            "rerank_score": self.rerank_score,
            "context_score": self.context_score,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """A recalled record with its final score."""

    record: Record
    score: float
    explanation: Explanation | None = None

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON data: the record's main fields, its score and, when the query
        asked for one, its explanation (``memory search --json``, ``memory_recall``)."""
        r = self.record
        out: dict[str, Any] = {
            "id": r.id,
            "text": r.text,
            "layer": str(r.layer),
            "score": self.score,
            "kind": r.kind,
            "tags": list(r.tags),
            "project": r.project,
            "created_at": iso(r.created_at),
            "occurred_at": iso(r.occurred_at),
            "access_count": r.access_count,
        }
        if r.source is not None:
            out["source"] = {"uri": r.source.uri, "line_start": r.source.line_start}
        if self.explanation is not None:
            out["explain"] = self.explanation.to_dict()
        return out
