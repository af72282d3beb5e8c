"""The column values of a new record, in one order every backend's insert uses."""

from __future__ import annotations

from typing import Any

from magray.memory.records import NewRecord

#: the columns :func:`record_row` fills, in its order
RECORD_ROW_COLUMNS = (
    "id, text, layer, kind, tags, project, session, source_uri, source_start, source_end,"
    " source_line_start, source_line_end, created_at, updated_at, layer_since, importance,"
    " pinned, content_hash"
)
RECORD_ROW_WIDTH = 18


def record_row(item: NewRecord, *, id_: str, chash: str, tags: Any, now: float) -> tuple[Any, ...]:
    """The values of :data:`RECORD_ROW_COLUMNS` for ``item`` stored at ``now`` under ``id_``
    with content hash ``chash``; ``tags`` as the backend stores them (JSON text, an array)."""
    src = item.source
    return (
        id_,
        item.text,
        str(item.layer),
        item.kind,
        tags,
        item.project or "",
        item.session,
        src.uri if src else None,
        src.start if src else None,
        src.end if src else None,
        src.line_start if src else None,
        src.line_end if src else None,
        now,
        now,
        now,
        item.importance,
        item.pinned,  # a bool: SQLite stores 1/0, PostgreSQL a boolean
        chash,
    )
