"""The shared core of the PostgreSQL backend: the pool, transactions under the writer lock,
row decoding and filters as SQL. The behaviour lives in the mixins of ``backend.py``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from magray.memory.backends.base import StoredRow
from magray.memory.backends.postgres import connection, schema
from magray.memory.records import Filters, Layer, Record, Source

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

Conn = "psycopg.Connection[Any]"

COLUMNS = (
    "r.num, r.id, r.text, r.layer, r.kind, r.tags, r.project, r.session, r.source_uri,"
    " r.source_start, r.source_end, r.source_line_start, r.source_line_end, r.created_at,"
    " r.updated_at, r.layer_since, st.last_access_at, COALESCE(st.access_count, 0),"
    " r.importance, r.pinned, r.promotion_score, r.content_hash, r.embedding_model"
)
# What ``COLUMNS`` reads from: a record and its access statistics.
RECORDS = "records r LEFT JOIN record_stats st ON st.num = r.num"
# One more access of the record labelled %(num)s at %(at)s.
BUMP = (
    "INSERT INTO record_stats (num, access_count, last_access_at) VALUES (%s, %s, %s)"
    " ON CONFLICT (num) DO UPDATE SET access_count = record_stats.access_count"
    " + excluded.access_count, last_access_at = GREATEST(record_stats.last_access_at,"
    " excluded.last_access_at)"
)


def _real(value: Any, default: float) -> float:
    return float(value) if isinstance(value, float | int) and math.isfinite(value) else default


def _opt_real(value: Any) -> float | None:
    return float(value) if isinstance(value, float | int) and math.isfinite(value) else None


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def to_row(row: tuple[Any, ...]) -> StoredRow:
    """A ``records`` row (``COLUMNS``) as a ``StoredRow``."""
    (num, id_, text, layer, kind, tags, project, session, uri, start, end, ls, le) = row[:13]
    (created, updated, since, last, count, importance, pinned, score, chash, model) = row[13:]
    source = None
    if uri is not None:
        source = Source(str(uri), _opt_int(start), _opt_int(end), _opt_int(ls), _opt_int(le))
    created_at = _real(created, 0.0)
    record = Record(
        id=str(id_),
        text=str(text),
        layer=Layer(layer),
        kind=str(kind),
        tags=tuple(str(t) for t in tags or ()),
        project=project or None,
        session=session,
        source=source,
        created_at=created_at,
        updated_at=_real(updated, created_at),
        layer_since=_real(since, created_at),
        last_access_at=_opt_real(last),
        access_count=int(count) if isinstance(count, int) and count >= 0 else 0,
        importance=_real(importance, 0.5),
        pinned=bool(pinned),
        promotion_score=_opt_real(score),
        content_hash=str(chash),
        embedding_model=model,
    )
    return StoredRow(num=int(num), record=record)


def filter_sql(filters: Filters, alias: str = "r") -> tuple[str, list[Any]]:
    """A condition (valid after WHERE) and its parameters for ``filters``."""
    parts: list[str] = ["TRUE"]
    params: list[Any] = []
    if filters.layers:
        parts.append(f"{alias}.layer = ANY(%s)")
        params.append([str(layer) for layer in filters.layers])
    if filters.kind:
        parts.append(f"{alias}.kind = %s")
        params.append(filters.kind)
    if filters.exclude_kinds:
        parts.append(f"NOT ({alias}.kind = ANY(%s))")
        params.append(list(filters.exclude_kinds))
    if filters.project:
        parts.append(f"{alias}.project = %s")
        params.append(filters.project)
    if filters.session:
        parts.append(f"{alias}.session = %s")
        params.append(filters.session)
    if filters.created_after is not None:
        parts.append(f"{alias}.created_at >= %s")
        params.append(filters.created_after)
    if filters.created_before is not None:
        parts.append(f"{alias}.created_at < %s")
        params.append(filters.created_before)
    if filters.tags:
        parts.append(f"{alias}.tags @> %s::text[]")
        params.append(sorted(set(filters.tags)))
    return " AND ".join(parts), params


def vector_param(blob: bytes) -> Any:
    """Little-endian float32 bytes as a value psycopg sends as a pgvector ``vector``."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def vector_bytes(value: Any) -> bytes:
    """A ``vector`` read back (pgvector's ``Vector`` or an array) as float32 LE bytes."""
    array = value.to_numpy() if hasattr(value, "to_numpy") else np.asarray(value)
    return np.asarray(array, dtype="<f4").tobytes()


def reasons_json(reasons: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(reasons), ensure_ascii=False)


def reasons_of(text: Any) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


class Core:
    """Pool, schema and transactions of one store (one tenant schema of one database)."""

    name = "postgres"

    def __init__(
        self,
        pool: ConnectionPool[Any],
        *,
        dsn: str,
        schema_name: str,
        vector_kind: str,
        lock_timeout: float,
        ef_search: int,
    ) -> None:
        self._pool = pool
        self._dsn = dsn
        self.schema = schema_name
        self.vector_kind = vector_kind
        self.lock_timeout = lock_timeout
        self.ef_search = ef_search
        self._closed = False

    @property
    def location(self) -> str:
        return f"{connection.redact(self._dsn)} (schema {self.schema})"

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    @contextmanager
    def _read(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection whose statements each see the latest committed state."""
        with connection.transaction(self._pool, self.location, atomic=False) as conn:
            yield conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in one transaction (without the writer lock)."""
        with connection.transaction(self._pool, self.location) as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        """One write transaction under the store's single-writer lock (an advisory lock
        held to commit); waits at most ``lock_timeout`` for it."""
        with connection.transaction(self._pool, self.location) as conn:
            ms = max(1, int(self.lock_timeout * 1000))
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{ms}ms",))
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (schema.lock_key(self.schema),)
            )
            conn.execute(
                "SELECT set_config('lock_timeout', '0', true),"
                " set_config('synchronous_commit', 'on', true)"
            )
            yield conn

    # -- metadata -------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(conn: psycopg.Connection[Any], key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (%s, %s)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def set_meta(self, key: str, value: str) -> None:
        with self._write() as conn:
            self._set_meta(conn, key, value)

    def embedding_model(self) -> tuple[str | None, int | None]:
        with self._read() as conn:
            rows = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('embedding_model', 'embedding_dim')"
                ).fetchall()
            )
        model, dim = rows.get("embedding_model"), rows.get("embedding_dim")
        return (str(model) if model else None), (int(dim) if dim else None)

    def _ensure_model(self, conn: psycopg.Connection[Any], model_id: str, dim: int) -> None:
        """On the first write: record the store's model and type the vector column."""
        row = conn.execute("SELECT value FROM meta WHERE key = 'embedding_model'").fetchone()
        if row is None:
            self._set_meta(conn, "embedding_model", model_id)
            self._set_meta(conn, "embedding_dim", str(dim))
        schema.fix_vector_column(conn, self.vector_kind, dim)

    def set_embedding_model(self, model_id: str, dim: int) -> None:
        with self._write() as conn:
            self._set_meta(conn, "embedding_model", model_id)
            self._set_meta(conn, "embedding_dim", str(dim))
            schema.fix_vector_column(conn, self.vector_kind, dim)
