"""Remembering records: check each one, embed them in batches, store them in write
transactions (``Memory.remember`` and ``Memory.remember_many``).

``validate`` is the one check of a new record's text, importance, time, kind and tags;
file ingest (``ingest.pipeline``) and conversation import use it too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from magray.errors import UsageError
from magray.memory.records import (
    MAX_TAG_CHARS,
    MAX_TEXT_CHARS,
    MAX_TIME,
    MIN_TIME,
    Layer,
    NewRecord,
    check_label,
)

if TYPE_CHECKING:
    from magray.memory.service import Memory, Progress

EMBED_BATCH = 256  # texts per embedder call
WRITE_BATCH = 1024  # the most records one write transaction holds


@dataclass(frozen=True, slots=True)
class RememberResult:
    id: str
    layer: Layer
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """As ``memory add --json``, ``POST /v1/memories`` and ``memory_remember`` print it."""
        return {"id": self.id, "layer": str(self.layer), "created": self.created}


def validate(item: NewRecord) -> None:
    """Reject input a user should fix, with one sentence saying how."""
    check_text(item.text)
    if not 0.0 <= item.importance <= 1.0:
        raise UsageError(f"importance must be between 0 and 1 (got {item.importance}).")
    if item.occurred_at is not None and not MIN_TIME <= item.occurred_at <= MAX_TIME:
        raise UsageError(
            "occurred_at must be unix seconds between the years 1 and 9999"
            f" (got {item.occurred_at!r})."
        )
    if not item.kind.strip():
        raise UsageError("kind is empty; give a word such as note or fact, or leave it out.")
    if len(item.kind) > MAX_TAG_CHARS:
        raise UsageError(
            f"the kind is {len(item.kind):,} characters, over {MAX_TAG_CHARS}; give a short"
            " word such as note or fact."
        )
    check_label(item.kind, "the kind")
    for tag in item.tags:
        if not tag.strip() or "," in tag:
            raise UsageError(f"invalid tag {tag!r}: tags are non-empty and contain no commas.")
        if len(tag) > MAX_TAG_CHARS:
            raise UsageError(
                f"a tag is {len(tag):,} characters, over {MAX_TAG_CHARS}; tags are short"
                " labels: put longer text in the memory itself."
            )
        check_label(tag, "the tag")
    if item.project is not None:
        check_label(item.project, "the project")
    if item.session is not None:
        check_label(item.session, "the session")


def check_text(text: str) -> None:
    """Reject a text no memory holds: empty, too long, or with NUL (tabs, newlines and
    other control characters are text's own)."""
    if not text.strip():
        raise UsageError("the text to remember is empty; give some text or pipe it with '-'.")
    if len(text) > MAX_TEXT_CHARS:
        raise UsageError(
            f"the text has {len(text):,} characters, more than one memory holds"
            f" ({MAX_TEXT_CHARS:,}); split it, or save it as a file and `magray ingest` it."
        )
    if "\x00" in text:
        raise UsageError("the text contains NUL bytes; remember text, not binary data.")


def remember_many(
    memory: Memory, items: Sequence[NewRecord], progress: Progress | None = None
) -> list[RememberResult]:
    """``Memory.remember_many``: embed and store ``items``, in their order."""
    for item in items:
        validate(item)
    memory.check_model()
    embedder = memory.embedder
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
            inserted = memory.backend.insert(
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

    lifecycle.maybe_run(memory)
    return results
