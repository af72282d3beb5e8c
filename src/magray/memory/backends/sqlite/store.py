"""The SQLite store: the source of truth for records, tags, access history and metadata.

One writer at a time (a file lock beside the database, with a clear error on timeout);
readers never block (WAL). Every write is one transaction; ``synchronous=FULL`` makes a
committed record survive kill -9 and power loss.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from magray.errors import (
    Listing,
    NotFoundError,
    SchemaError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    UsageError,
    see,
)
from magray.memory.backends.base import Candidate, InsertResult, StoredRow
from magray.memory.backends.sqlite import access_stats
from magray.memory.backends.sqlite.inserts import insert_many
from magray.memory.backends.sqlite.migrations import (
    ACCESS_STATS_VERSION,
    SCHEMA_VERSION,
    current_version,
    migrate,
)
from magray.memory.backends.sqlite.rows import (
    EVENT_AT,
    RECORD_COLUMNS,
    STATS_JOIN,
    filter_sql,
    row_to_record,
    stored_float,
)
from magray.memory.backends.sqlite.vector_backlog import VECTOR_SQL
from magray.memory.records import MIN_ID_PREFIX, Filters, Layer, NewRecord
from magray.sqlite_migrations import BUSY_TIMEOUT_S, advice, connect

_NO_FILTERS = Filters()
log = logging.getLogger("magray")


@functools.lru_cache(maxsize=64)
def _fetch_sql(count: int, cond: str) -> str:
    """The read of ``count`` records by label under the filter condition ``cond`` (the SQL
    text of every recall's hits, made once)."""
    return (
        f"SELECT {RECORD_COLUMNS} FROM records r NOT INDEXED{STATS_JOIN} WHERE r.num IN"
        f" ({','.join('?' * count)}) AND {cond}"
    )


def _connect(path: Path) -> sqlite3.Connection:
    # freed pages (the vector backlog, see ``vector_backlog``) go back to the file system
    return connect(path, check_same_thread=False, incremental_vacuum=True)


def translate_sqlite_error(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc).lower()
    if "disk is full" in text or "disk i/o" in text:
        return StoreFullError(f"the disk holding {path} is full or failing; free space and retry.")
    if "malformed" in text or "not a database" in text:
        return StoreError(
            f"{path} is damaged ({exc}); restore a backup with `magray memory restore PATH`."
        )
    if "locked" in text or "busy" in text:
        return StoreLockedError(f"{path} is busy in another process; try again in a moment.")
    if "readonly" in text:
        return StoreError(
            f"the memory store {path} cannot be written ({exc}); check that it and its folder"
            " are writable."
        )
    if "unable to open" in text:
        return StoreError(
            f"the memory store {path} cannot be opened ({exc}); check that it is a file and"
            " its folder is writable."
        )
    return StoreError(f"the memory store {path} failed: {exc}.")


_LAYERS = {layer.value: layer for layer in Layer}


class Store:
    """Low-level access to one SQLite memory database."""

    def __init__(self, path: Path, *, lock_timeout: float = 10.0) -> None:
        from filelock import FileLock

        self.path = path
        self.lock_timeout = lock_timeout
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"the memory store {path} cannot be created ({exc.strerror}){advice(exc)}."
            ) from None
        self._lock = FileLock(str(path) + ".lock")
        self._stats_conn: sqlite3.Connection | None = None  # access stats (see record_access)
        self._stats_lock = threading.Lock()  # one user of _stats_conn at a time
        self._fold_conn: sqlite3.Connection | None = None  # the fold's (see fold_accesses)
        self._fold_lock = threading.Lock()  # one user of _fold_conn at a time
        self._folder: threading.Thread | None = None
        self._fold_state = threading.Condition()  # guards the three below
        self._fold_asked = False
        self._folding = False
        self._closing = False
        try:
            self.conn = _connect(path)
            have = current_version(self.conn)
        except sqlite3.Error as exc:
            raise translate_sqlite_error(exc, path) from None
        if have > SCHEMA_VERSION:
            self.conn.close()
            raise SchemaError(
                f"{path} was written by a newer MAGRAY (schema {have} > {SCHEMA_VERSION});"
                " upgrade MAGRAY to use it."
            )
        if have < SCHEMA_VERSION:
            with self.locked():
                applied = migrate(self.conn)
            if ACCESS_STATS_VERSION in applied:  # the old access log, now pending: pack it
                with self.write() as conn:
                    access_stats.fold(conn)

    def close(self) -> None:
        with self._fold_state:
            self._closing = True
            self._fold_state.notify_all()
        if self._folder is not None and self._folder is not threading.current_thread():
            self._folder.join()
        with self._stats_lock:
            if self._stats_conn is not None:
                self._stats_conn.close()
                self._stats_conn = None
        with self._fold_lock:
            if self._fold_conn is not None:
                self._fold_conn.close()
                self._fold_conn = None
        self.conn.close()

    # -- locking and transactions -------------------------------------------------------
    @contextmanager
    def locked(self, timeout: float | None = None) -> Iterator[None]:
        """Hold the one-writer lock (re-entrant within a process)."""
        from filelock import Timeout

        wait = self.lock_timeout if timeout is None else timeout
        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            raise StoreLockedError(
                f"another magray process is writing to {self.path}; waited {wait:g} s —"
                " try again when it finishes (or raise memory.lock_timeout)."
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    @property
    def lock_held(self) -> bool:
        return bool(self._lock.is_locked)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction under the writer lock; rolled back on any error."""
        with self.locked():
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate_sqlite_error(exc, self.path) from None
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise translate_sqlite_error(exc, self.path) from None
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise

    def checkpoint(self, wait: float = 0.2) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes (after bulk writes:
        SQLite reuses the WAL file but never shrinks it, so it would keep the size of the
        largest write on disk). Waits at most ``wait`` seconds for the writer lock and for
        readers of older snapshots; returns whether the WAL was truncated."""
        try:
            with self.locked(timeout=wait):
                self.conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
                try:
                    busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    self.conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        except (StoreLockedError, sqlite3.Error):
            return False  # someone else is busy with the store; the WAL shrinks later
        return not busy

    # -- metadata ------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- writes --------------------------------------------------------------------------
    @staticmethod
    def insert(
        conn: sqlite3.Connection,
        item: NewRecord,
        *,
        vector: bytes | None,
        model_id: str | None,
        now: float,
    ) -> InsertResult:
        """Insert ``item`` or, if the same content is in the same layer+project, bump it."""
        return insert_many(conn, [(item, vector)], model_id=model_id, now=now)[0]

    def record_accesses(self, events: Sequence[tuple[int, float]]) -> None:
        """Bump access stats, one (label, time) per access, in one short transaction (best
        effort): the narrow counters and the append-only log (``access_stats``). Once
        ``FOLD_AT`` accesses are pending, a thread of the store folds the log (``fold_soon``).

        Stats never block or fail a search: if another process holds the store, they are
        skipped. They go through a second connection that commits without an fsync
        (``synchronous = NORMAL``): a power cut may lose the last few, never a record.
        """
        if not events:
            return
        with self._stats_lock:
            conn = self._stats()
            try:
                conn.execute("BEGIN IMMEDIATE")
                access_stats.bump(conn, events)
                conn.execute("COMMIT")
                due = access_stats.due(conn)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                return
        if due:
            self.fold_soon()

    def fold_soon(self) -> None:
        """Have the store's fold thread fold the access log (``fold_accesses``). Neither the
        write that found the log due nor a flush of statistics on a request's path (``Memory``
        writes pending ones before it uses the store) waits for the fold: it runs on a
        connection of its own, and other writes wait for one of its steps at most."""
        with self._fold_state:
            if self._closing:
                return
            self._fold_asked = True
            if self._folder is None or not self._folder.is_alive():  # none yet, or forked
                self._folder = threading.Thread(
                    target=self._fold_loop, name="magray-access-fold", daemon=True
                )
                self._folder.start()
            self._fold_state.notify_all()

    def wait_for_fold(self, timeout: float | None = None) -> bool:
        """Wait until no fold is asked for or running (tests, benchmarks); whether it is so."""
        with self._fold_state:
            return self._fold_state.wait_for(
                lambda: not (self._fold_asked or self._folding), timeout
            )

    def _fold_loop(self) -> None:
        while True:
            with self._fold_state:
                self._fold_state.wait_for(lambda: self._fold_asked or self._closing)
                if self._closing:
                    return
                self._fold_asked, self._folding = False, True
            try:
                self.fold_accesses()
            except Exception as exc:  # statistics never fail anything
                log.debug("access statistics not folded: %s", exc)
            finally:
                with self._fold_state:
                    self._folding = False
                    self._fold_state.notify_all()

    def fold_accesses(self) -> None:
        """Fold the pending access log into the bounded history in short write transactions
        (``access_stats.fold_in_steps``), on the store's fold connection: from its fold
        thread, and before a lifecycle write, whose own fold is then short. Best effort,
        like every statistic: what is left waits for the next fold."""
        with self._fold_lock:
            if self._fold_conn is None:
                self._fold_conn = self._stats_connection()
            conn = self._fold_conn
            try:
                access_stats.fold_in_steps(conn)
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def _stats(self) -> sqlite3.Connection:
        """The connection of the access statistics (under ``_stats_lock``)."""
        if self._stats_conn is None:
            self._stats_conn = self._stats_connection()
        return self._stats_conn

    def _stats_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=0.2
        )
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 200")
        conn.execute("PRAGMA foreign_keys = OFF")  # see access_stats.bump
        conn.execute("PRAGMA temp_store = MEMORY")  # a fold's step tables
        return conn

    # -- reads ---------------------------------------------------------------------------
    def resolve(self, id_or_prefix: str) -> StoredRow:
        """The record whose id is ``id_or_prefix`` or uniquely starts with it."""
        key = id_or_prefix.strip().lower()
        if len(key) < MIN_ID_PREFIX:
            raise UsageError(f"give at least {MIN_ID_PREFIX} characters of a memory id.")
        rows = self.conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM records r{STATS_JOIN} WHERE r.id >= ? AND r.id < ?"
            " ORDER BY r.id LIMIT 6",
            (key, key + "\uffff"),
        ).fetchall()
        exact = [r for r in rows if r[1] == key]
        if exact:
            return row_to_record(exact[0])
        if not rows:
            raise NotFoundError(f"no memory with id {id_or_prefix!r}", see(Listing.MEMORIES))
        if len(rows) > 1:
            ids = ", ".join(r[1] for r in rows[:5])
            raise UsageError(f"id prefix {id_or_prefix!r} is ambiguous ({ids}); give more of it.")
        return row_to_record(rows[0])

    def fetch(self, nums: Iterable[int], filters: Filters | None = None) -> dict[int, StoredRow]:
        """Records by label, restricted to ``filters``; missing ones are simply absent.

        Reads by label say ``NOT INDEXED``: with a layer filter SQLite would otherwise walk
        the whole layer in ``records_layer_created`` instead of looking up the rowids."""
        wanted = list(dict.fromkeys(nums))
        if not wanted:
            return {}
        cond, params = filter_sql(filters or _NO_FILTERS)
        found: dict[int, StoredRow] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = self.conn.execute(
                _fetch_sql(len(chunk), cond), [*chunk, *params] if params else chunk
            ).fetchall()
            for row in rows:
                stored = row_to_record(row)
                found[stored.num] = stored
        return found

    def candidates(self, nums: Iterable[int], filters: Filters) -> dict[int, Candidate]:
        """Labels among ``nums`` that exist and match ``filters``, with their current layer,
        event time and session (a narrow read: no text, no vector)."""
        wanted = list(dict.fromkeys(nums))
        cond, params = filter_sql(filters)
        found: dict[int, Candidate] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            for num, layer, created, session in self.conn.execute(
                f"SELECT r.num, r.layer, {EVENT_AT}, r.session FROM records r NOT INDEXED"
                f" WHERE r.num IN"
                f" ({','.join('?' * len(chunk))}) AND {cond}",
                [*chunk, *params],
            ):
                # The hot path of recall (hundreds of rows a query): plain values go straight
                # through; anything odd takes the careful conversion.
                at = created if type(created) is float and created - created == 0.0 else None
                found[num] = Candidate(
                    num,
                    _LAYERS[layer],
                    stored_float(created) if at is None else at,
                    session if type(session) is str else None,
                )
        return found

    def list_records(self, filters: Filters, *, limit: int, offset: int = 0) -> list[StoredRow]:
        cond, params = filter_sql(filters)
        rows = self.conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM records r{STATS_JOIN} WHERE {cond}"
            " ORDER BY r.created_at DESC, r.num DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [row_to_record(r) for r in rows]

    def iter_all(self, filters: Filters | None = None, batch: int = 1000) -> Iterator[StoredRow]:
        """Every record in ``num`` order, fetched in batches (for export and reindex)."""
        cond, params = filter_sql(filters or Filters())
        last = 0
        while True:
            rows = self.conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM records r{STATS_JOIN} WHERE r.num > ? AND {cond}"
                " ORDER BY r.num LIMIT ?",
                [last, *params, batch],
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield row_to_record(row)
            last = rows[-1][0]

    def vectors(self, nums: Sequence[int]) -> dict[int, tuple[str | None, bytes]]:
        """(embedding model, stored bytes: float32 LE or tagged float16, see ``vector_codec``)
        of each label that has a vector; empty bytes when only the index file holds it
        (``vector_backlog``)."""
        out: dict[int, tuple[str | None, bytes]] = {}
        for i in range(0, len(nums), 500):
            chunk = list(nums[i : i + 500])
            for num, model, blob in self.conn.execute(
                f"SELECT r.num, r.embedding_model, {VECTOR_SQL} FROM records r"
                f" WHERE r.vector IS NOT NULL AND r.num IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[num] = (model, blob)
        return out

    def count(self, filters: Filters | None = None) -> int:
        cond, params = filter_sql(filters or Filters())
        row = self.conn.execute(f"SELECT COUNT(*) FROM records r WHERE {cond}", params).fetchone()
        return int(row[0])

    def journal_head(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(seq), 0) FROM index_journal").fetchone()
        return int(row[0])

    def journal_since(self, layer: Layer, seq: int) -> list[tuple[int, int, str]]:
        """(seq, num, op) journal entries of ``layer`` after ``seq``."""
        return [
            (int(s), int(n), str(o))
            for s, n, o in self.conn.execute(
                "SELECT seq, num, op FROM index_journal WHERE layer = ? AND seq > ? ORDER BY seq",
                (str(layer), seq),
            )
        ]
