"""Records of the PostgreSQL backend: inserts with deduplication, deletes, access stats
and every read by label, id, filter or page."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from magray.errors import Listing, NotFoundError, UsageError, see
from magray.hashing import content_hash
from magray.memory.access import FOLD_AT
from magray.memory.backends.base import Candidate, InsertResult, LayerStats, StoredRow
from magray.memory.backends.postgres import access, schema
from magray.memory.backends.postgres.core import (
    BUMP,
    COLUMNS,
    RECORDS,
    Core,
    filter_sql,
    to_row,
    vector_param,
)
from magray.memory.backends.record_row import RECORD_ROW_COLUMNS, RECORD_ROW_WIDTH, record_row
from magray.memory.records import Filters, Layer, NewRecord, new_id

if TYPE_CHECKING:
    import psycopg

MIN_ID_PREFIX = 4

_INSERT = (
    f"INSERT INTO records ({RECORD_ROW_COLUMNS}, embedding_model, embedding)"
    f" VALUES ({', '.join(['%s'] * (RECORD_ROW_WIDTH + 2))}) RETURNING num"
)


def insert_one(
    conn: psycopg.Connection[Any], item: NewRecord, vector: bytes, model_id: str, now: float
) -> InsertResult:
    """Insert ``item`` or bump the record holding its dedup key (inside a write)."""
    chash = content_hash(item.text)
    project = item.project or ""
    tags = list(dict.fromkeys(item.tags))
    found = conn.execute(
        "SELECT num, id, tags, embedding_model FROM records"
        " WHERE layer = %s AND project = %s AND content_hash = %s FOR UPDATE",
        (str(item.layer), project, chash),
    ).fetchone()
    if found is not None:
        num, id_, old_tags, old_model = found
        merged = list(dict.fromkeys([*old_tags, *tags]))
        conn.execute(
            "UPDATE records SET updated_at = %s, tags = %s, importance = GREATEST(importance, %s),"
            " pinned = pinned OR %s WHERE num = %s",
            (now, merged, item.importance, item.pinned, num),
        )
        conn.execute(BUMP, (num, 1, now))
        if old_model != model_id:
            conn.execute(
                "UPDATE records SET embedding = %s, embedding_model = %s WHERE num = %s",
                (vector_param(vector), model_id, num),
            )
        conn.execute("INSERT INTO access_log (num, at) VALUES (%s, %s)", (num, now))
        return InsertResult(num=int(num), id=str(id_), layer=item.layer, created=False)
    id_ = new_id()
    row = conn.execute(_INSERT, _row_params(item, vector, id_, chash, model_id, now)).fetchone()
    assert row is not None
    return InsertResult(num=int(row[0]), id=id_, layer=item.layer, created=True)


def _row_params(
    item: NewRecord, vector: bytes, id_: str, chash: str, model_id: str, now: float
) -> tuple[Any, ...]:
    tags = list(dict.fromkeys(item.tags))
    row = record_row(item, id_=id_, chash=chash, tags=tags, now=now)
    return (*row, model_id, vector_param(vector))


def insert_many(
    conn: psycopg.Connection[Any],
    items: Sequence[tuple[NewRecord, bytes]],
    model_id: str,
    now: float,
) -> list[InsertResult]:
    """``insert_one`` for each item, with the new records sent in one pipelined batch."""
    keys = [(str(item.layer), item.project or "", content_hash(item.text)) for item, _ in items]
    wanted = list(dict.fromkeys(keys))
    stored = {
        (str(layer), str(project), str(chash))
        for layer, project, chash in conn.execute(
            "SELECT layer, project, content_hash FROM records"
            " WHERE (layer, project, content_hash) IN"
            " (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
            ([k[0] for k in wanted], [k[1] for k in wanted], [k[2] for k in wanted]),
        )
    }
    fresh: dict[tuple[str, str, str], int] = {}
    for i, key in enumerate(keys):
        if key not in stored and key not in fresh:
            fresh[key] = i
    order = sorted(fresh.values())
    ids = {i: new_id() for i in order}
    nums: dict[int, int] = {}
    if order:
        params = [_row_params(*items[i], ids[i], keys[i][2], model_id, now) for i in order]
        with conn.cursor() as cur:
            cur.executemany(_INSERT, params, returning=True)
            for i in order:
                row = cur.fetchone()
                assert row is not None
                nums[i] = int(row[0])
                cur.nextset()
    results: list[InsertResult] = []
    for i, (item, vector) in enumerate(items):
        if i in nums:
            results.append(InsertResult(num=nums[i], id=ids[i], layer=item.layer, created=True))
        else:  # the key was stored before, or earlier in this batch: bump that record
            results.append(insert_one(conn, item, vector, model_id, now))
    return results


class RecordsMixin(Core):
    # -- writes ---------------------------------------------------------------------------
    def insert(
        self, items: Sequence[tuple[NewRecord, bytes]], *, model_id: str, dim: int, now: float
    ) -> list[InsertResult]:
        if not items:
            return []
        with self._write() as conn:
            self._ensure_model(conn, model_id, dim)
            return insert_many(conn, items, model_id, now)

    def delete(self, nums: Iterable[int]) -> int:
        wanted = list(dict.fromkeys(int(n) for n in nums))
        if not wanted:
            return 0
        with self._write() as conn:
            cur = conn.execute("DELETE FROM records WHERE num = ANY(%s)", (wanted,))
            return int(cur.rowcount)

    def record_access(self, nums: Sequence[int], now: float) -> None:
        """Best effort, in one statement: skipped when the writer lock is held elsewhere;
        committed without waiting for the WAL flush (a crash may lose the last few)."""
        if not nums:
            return
        try:
            with self._read() as conn:
                conn.execute(
                    "WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtext(%s)) AS got),"
                    " bumped AS (INSERT INTO record_stats (num, access_count, last_access_at)"
                    " SELECT r.num, 1, %s FROM records r WHERE r.num = ANY(%s)"
                    " AND (SELECT got FROM lock) ON CONFLICT (num) DO UPDATE SET"
                    " access_count = record_stats.access_count + 1,"
                    " last_access_at = excluded.last_access_at RETURNING num)"
                    " INSERT INTO access_log (num, at) SELECT num, %s FROM bumped",
                    (schema.lock_key(self.schema), now, list(nums), now),
                )
        except Exception:  # stats never fail a search
            return

    def record_accesses(self, events: Sequence[tuple[int, float]]) -> None:
        """``record_access`` once per distinct time, in the order the accesses happened."""
        by_time: dict[float, list[int]] = {}
        for num, at in events:
            by_time.setdefault(at, []).append(num)
        for at, nums in by_time.items():
            self.record_access(nums, at)
        try:
            with self._read() as conn:
                row = conn.execute(access.PENDING).fetchone()
                if row is not None and int(row[0]) >= FOLD_AT:
                    conn.execute(access.FOLD_IF_FREE, (schema.lock_key(self.schema),))
        except Exception:  # stats never fail a search
            return

    # -- reads ----------------------------------------------------------------------------
    def resolve(self, id_or_prefix: str) -> StoredRow:
        key = id_or_prefix.strip().lower()
        if len(key) < MIN_ID_PREFIX:
            raise UsageError(f"give at least {MIN_ID_PREFIX} characters of a memory id.")
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {RECORDS} WHERE r.id >= %s AND r.id < %s"
                " ORDER BY r.id LIMIT 6",
                (key, key + "\uffff"),
            ).fetchall()
        exact = [r for r in rows if r[1] == key]
        if exact:
            return to_row(exact[0])
        if not rows:
            raise NotFoundError(f"no memory with id {id_or_prefix!r}", see(Listing.MEMORIES))
        if len(rows) > 1:
            ids = ", ".join(str(r[1]) for r in rows[:5])
            raise UsageError(f"id prefix {id_or_prefix!r} is ambiguous ({ids}); give more of it.")
        return to_row(rows[0])

    def fetch(self, nums: Iterable[int], filters: Filters | None = None) -> dict[int, StoredRow]:
        wanted = list(dict.fromkeys(int(n) for n in nums))
        if not wanted:
            return {}
        cond, params = filter_sql(filters or Filters())
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {RECORDS} WHERE r.num = ANY(%s) AND {cond}",
                [wanted, *params],
            ).fetchall()
        return {s.num: s for s in map(to_row, rows)}

    def candidates(self, nums: Iterable[int], filters: Filters) -> dict[int, Candidate]:
        wanted = list(dict.fromkeys(int(n) for n in nums))
        if not wanted:
            return {}
        cond, params = filter_sql(filters)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT r.num, r.layer, r.created_at FROM records r WHERE r.num = ANY(%s)"
                f" AND {cond}",
                [wanted, *params],
            ).fetchall()
        return {int(n): Candidate(int(n), Layer(layer), float(at)) for n, layer, at in rows}

    def list_records(self, filters: Filters, *, limit: int, offset: int = 0) -> list[StoredRow]:
        cond, params = filter_sql(filters)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM {RECORDS} WHERE {cond}"
                " ORDER BY r.created_at DESC, r.num DESC LIMIT %s OFFSET %s",
                [*params, limit, offset],
            ).fetchall()
        return [to_row(r) for r in rows]

    def iter_records(
        self, filters: Filters | None = None, batch: int = 1000
    ) -> Iterator[StoredRow]:
        cond, params = filter_sql(filters or Filters())
        last = 0
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    f"SELECT {COLUMNS} FROM {RECORDS} WHERE r.num > %s AND {cond}"
                    " ORDER BY r.num LIMIT %s",
                    [last, *params, batch],
                ).fetchall()
            if not rows:
                return
            yield from map(to_row, rows)
            last = int(rows[-1][0])

    def count(self, filters: Filters | None = None) -> int:
        cond, params = filter_sql(filters or Filters())
        with self._read() as conn:
            row = conn.execute(f"SELECT COUNT(*) FROM records r WHERE {cond}", params).fetchone()
        return int(row[0]) if row else 0

    def has_sessions(self) -> bool:
        with self._read() as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM records WHERE session IS NOT NULL)"
            ).fetchone()
        return bool(row and row[0])

    def vectors(self, nums: Sequence[int]) -> dict[int, tuple[str | None, bytes]]:
        from magray.memory.backends.postgres.core import vector_bytes

        wanted = [int(n) for n in nums]
        if not wanted:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                "SELECT num, embedding_model, embedding::vector FROM records"
                " WHERE embedding IS NOT NULL AND num = ANY(%s)",
                (wanted,),
            ).fetchall()
        return {int(n): (model, vector_bytes(v)) for n, model, v in rows}

    def layer_stats(self) -> dict[Layer, LayerStats]:
        out = {layer: LayerStats(0, 0, 0, 0) for layer in Layer}
        with self._read() as conn:
            for layer, n, text_bytes, dims, pinned in conn.execute(
                "SELECT layer, COUNT(*), COALESCE(SUM(octet_length(text)), 0),"
                " COALESCE(SUM(vector_dims(embedding::vector)), 0),"
                " COUNT(*) FILTER (WHERE pinned) FROM records GROUP BY layer"
            ):
                out[Layer(layer)] = LayerStats(int(n), int(text_bytes), 4 * int(dims), int(pinned))
        return out

    def size_bytes(self) -> int:
        """Tables (with their TOAST and keyword/B-tree indexes), without the HNSW indexes."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r'",
                (self.schema,),
            ).fetchone()
            hnsw = conn.execute(
                "SELECT COALESCE(SUM(pg_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'i' AND c.relname LIKE 'records_hnsw_%%'",
                (self.schema,),
            ).fetchone()
        return int(row[0] if row else 0) - int(hnsw[0] if hnsw else 0)

    def index_bytes(self) -> int:
        """Bytes of the HNSW indexes (for the benchmark)."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(pg_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'i' AND c.relname LIKE 'records_hnsw_%%'",
                (self.schema,),
            ).fetchone()
        return int(row[0]) if row else 0
