"""The one SQLite helper of MAGRAY: ``connect`` and numbered schema migrations.

Every database of a home (memory, tasks, LLM usage, conversations, audit, audit chain,
server keys, embedding cache) opens through ``connect`` — WAL, foreign keys on, a busy
timeout, an explicit ``synchronous`` level, autocommit (transactions are explicit) — and
keeps its schema in numbered migrations recorded in ``schema_migrations``.

A migration is ``(version, name, SQL script)``. Each script runs in its own transaction
together with its bookkeeping row, so a crash leaves either the old or the new schema.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

Migration = tuple[int, str, str]
BUSY_TIMEOUT_S = 30.0


def connect(
    path: Path | str,
    *,
    synchronous: str = "FULL",
    check_same_thread: bool = True,
    timeout: float = BUSY_TIMEOUT_S,
    migrations: Sequence[Migration] = (),
    incremental_vacuum: bool = False,
) -> sqlite3.Connection:
    """Open ``path`` with MAGRAY's pragmas and apply ``migrations``; the caller maps
    ``sqlite3.Error`` to its own one-line StoreError. With ``incremental_vacuum`` a new
    database is created with ``auto_vacuum = INCREMENTAL`` (settable only before the first
    table and before WAL mode), so ``PRAGMA incremental_vacuum`` can give freed pages back."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=check_same_thread, timeout=timeout
    )
    try:
        if incremental_vacuum:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # a no-op on an existing file
        _switch_to_wal(conn, timeout)
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        if migrations:
            apply(conn, migrations)
    except BaseException:
        conn.close()
        raise
    return conn


def _switch_to_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting while another process creates the file.

    Switching a new database to WAL needs its exclusive lock, and SQLite answers "database
    is locked" at once, without its busy handler, when another connection holds a shared
    lock at that moment (two processes opening a new store together): retry until
    ``timeout`` like any other busy wait."""
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def current_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to ``conn`` (0 for an empty database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _file_of(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return str(row[2]) if row and row[2] else "the database"


def apply(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations newer than the database's version; returns those applied.

    A database whose version is above every migration was written by a newer MAGRAY:
    SchemaError. Two processes opening a new database at once are safe: each script takes
    the write lock first, and one that fails because the other applied the same version
    meanwhile is skipped.
    """
    from magray.errors import SchemaError

    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied: list[int] = []
    have = current_version(conn)
    latest = max((m[0] for m in migrations), default=0)
    if have > latest:
        raise SchemaError(
            f"{_file_of(conn)} was written by a newer MAGRAY (schema {have}, this one knows "
            f"{latest}); upgrade MAGRAY."
        )
    for version, name, script in migrations:
        if version <= have:
            continue
        quoted = name.replace("'", "''")
        try:
            # executescript commits any open transaction first, so BEGIN lives in the script.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                "INSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({int(version)}, '{quoted}', {time.time()!r});\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if current_version(conn) >= version:
                continue  # another process applied it while this one waited for the lock
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def advice(exc: BaseException) -> str:
    """What to do about a SQLite or file-system failure, as ``; …`` to end a message."""
    if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename:
        blocker = _file_in_the_way(Path(exc.filename))
        if blocker is not None:
            return f"; {blocker} is a file, not a folder: move it aside"
    text = str(exc).lower()
    if "full" in text or "no space" in text or "disk i/o" in text:
        return "; free some space and retry"
    if "malformed" in text or "not a database" in text:
        return (
            "; the file is damaged: restore a backup with `magray restore PATH`, or move it aside"
        )
    if "locked" in text or "busy" in text:
        return "; another process is using it, try again in a moment"
    if "readonly" in text or "unable to open" in text or "permission" in text:
        return "; check that it is a file and its folder is writable"
    return ""


def _file_in_the_way(path: Path) -> Path | None:
    """The first file on ``path`` (itself or a folder above it) where a folder belongs."""
    for place in (*reversed(path.parents), path):
        if place.exists() and not place.is_dir():
            return place
    return None


@contextmanager
def read_only(path: Path, *, timeout: float = 5.0) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the database at ``path`` for one look, closed afterwards:
    no migration, no journal mode change, nothing created (``sqlite3.Error`` as raised)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def opened(
    path: Path, *, migrations: Sequence[Migration], what: str
) -> Iterator[sqlite3.Connection]:
    """A connection for one operation, closed afterwards; SQLite failures become one
    ``StoreError`` line naming ``what`` (e.g. "the key store") and the file."""
    from magray.errors import StoreError

    try:
        conn = connect(path, migrations=migrations)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open {what} {path} ({exc}){advice(exc)}.") from None
    try:
        yield conn
    except sqlite3.Error as exc:
        raise StoreError(f"{what} {path} failed ({exc}){advice(exc)}.") from None
    finally:
        conn.close()
