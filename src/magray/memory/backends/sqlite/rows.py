"""Rows of the SQLite ``records`` table as ``Record`` values, and ``Filters`` as SQL."""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from magray.memory.backends.values import StoredRow
from magray.memory.positional import positional
from magray.memory.records import Filters, Layer, Record, Source

# The columns of a ``Record``, read from ``records r`` followed by ``STATS_JOIN``: the access
# counters live in the narrow ``record_stats`` (no row there: never accessed). A join, not
# two correlated subqueries: those cost 2.5 µs a row, the join 0.4.
RECORD_COLUMNS = (
    "r.num, r.id, r.text, r.layer, r.kind, r.tags, r.project, r.session, r.source_uri,"
    " r.source_start, r.source_end, r.source_line_start, r.source_line_end, r.created_at,"
    " r.updated_at, r.layer_since, s.last_access_at, COALESCE(s.access_count, 0),"
    " r.importance, r.pinned, r.promotion_score, r.content_hash, r.embedding_model, r.occurred_at"
)
STATS_JOIN = " LEFT JOIN record_stats s ON s.num = r.num"
_LAYER_OF: dict[Any, Layer] = {layer.value: layer for layer in Layer}
# When a record happened, for recency: its event time, else when it was stored.
EVENT_AT = "COALESCE(r.occurred_at, r.created_at)"
# ``Record(...)`` and ``StoredRow(...)`` without the per-field name lookups of a frozen
# dataclass's ``__init__`` (``memory.positional``): ten of each per recall.
_record = positional(Record)
_stored_row = positional(StoredRow)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def stored_float(value: Any, default: float = 0.0) -> float:
    """A stored number as a finite float; anything else (text, infinity) as ``default``."""
    return float(value) if _finite(value) else default


def _opt_float(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def _tags(value: Any) -> tuple[str, ...]:
    try:
        tags = json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return ()
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def _float(value: Any, default: float) -> float:
    """``stored_float`` with the common case (a finite float) first: the hot path of recall."""
    return value if type(value) is float and value - value == 0.0 else stored_float(value, default)


def _opt(value: Any) -> float | None:
    """``_opt_float`` with the common cases (NULL, a finite float) first."""
    if value is None:
        return None
    return value if type(value) is float and value - value == 0.0 else _opt_float(value)


def row_to_record(row: sqlite3.Row | tuple[Any, ...]) -> StoredRow:
    """A stored row as a ``Record``; a value no MAGRAY writes (text in a number column, a
    timestamp of infinity: hand edits, other tools) reads as a harmless default."""
    (
        num,
        id_,
        text,
        layer,
        kind,
        tags,
        project,
        session,
        uri,
        start,
        end,
        line_start,
        line_end,
        created_at,
        updated_at,
        layer_since,
        last_access_at,
        access_count,
        importance,
        pinned,
        promotion_score,
        chash,
        model,
        occurred_at,
    ) = row
    source = None
    if uri is not None:
        offsets = (_opt_int(start), _opt_int(end), _opt_int(line_start), _opt_int(line_end))
        source = Source(str(uri), *offsets)
    created = _float(created_at, 0.0)
    # Positional, in the field order of ``Record`` (keywords cost a third more per row).
    record = _record(
        id_,
        text if type(text) is str else str(text),
        _LAYER_OF.get(layer) or Layer(layer),
        str(kind),
        () if tags == "[]" else _tags(tags),
        project or None,
        session,
        source,
        created,
        _float(updated_at, created),
        _float(layer_since, created),
        _opt(last_access_at),
        access_count if type(access_count) is int and access_count >= 0 else 0,
        _float(importance, 0.5),
        bool(pinned),
        _opt(promotion_score),
        chash,
        model,
        _opt(occurred_at),
    )
    return _stored_row(num, record)


def filter_sql(filters: Filters, alias: str = "r") -> tuple[str, list[Any]]:
    """A SQL condition (always valid after WHERE) and its parameters for ``filters``."""
    if not filters.layers and not filters.active:  # every recall's hits are read so
        return "1", []
    parts: list[str] = ["1"]
    params: list[Any] = []
    if filters.layers:
        parts.append(f"{alias}.layer IN ({','.join('?' * len(filters.layers))})")
        params.extend(str(layer) for layer in filters.layers)
    if filters.kind:
        parts.append(f"{alias}.kind = ?")
        params.append(filters.kind)
    if filters.exclude_kinds:
        parts.append(f"{alias}.kind NOT IN ({','.join('?' * len(filters.exclude_kinds))})")
        params.extend(filters.exclude_kinds)
    if filters.project:
        parts.append(f"{alias}.project = ?")
        params.append(filters.project)
    if filters.session:
        parts.append(f"{alias}.session = ?")
        params.append(filters.session)
    if filters.created_after is not None:
        parts.append(f"{alias}.created_at >= ?")
        params.append(filters.created_after)
    if filters.created_before is not None:
        parts.append(f"{alias}.created_at < ?")
        params.append(filters.created_before)
    if filters.tags:
        tags = sorted(set(filters.tags))
        marks = ",".join("?" * len(tags))
        parts.append(
            f"{alias}.num IN (SELECT num FROM record_tags WHERE tag IN ({marks})"
            " GROUP BY num HAVING COUNT(*) = ?)"
        )
        params.extend(tags)
        params.append(len(tags))
    return " AND ".join(parts), params
