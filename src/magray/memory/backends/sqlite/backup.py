"""Snapshots and verified, all-or-nothing restores of the SQLite backend.

A backup folder (see ``memory.transfer.backup``) holds::

    memory.db        a consistent snapshot made with SQLite's online backup API
    index/...        copies of the vector index files (a store that keeps vectors apart
                     has dropped its copies of the vectors these files hold)
    manifest.json    versions, model, record counts per layer, sha256 + size of every file

``snapshot`` runs while other processes read and write. The index files and then the
database are copied under the writer lock, so no index file is half-written and the
database snapshot drops no vector the copied files lack (readers are never blocked).

``restore`` checks everything before it touches the live store: every file's size and
sha256, the schema version, ``PRAGMA integrity_check`` and the record counts of a verified
temporary copy. Only then, holding the writer lock:

1. the old database is checkpointed and switched out of WAL mode, which needs exclusive
   access (so a restore refuses while another process has the store open) and leaves a
   self-contained file with no ``-wal``/``-shm`` whose frames could be replayed onto the
   restored database;
2. the verified copy's folder is renamed to ``memory.db.restoring`` beside the store and
   the directory is fsynced: **the commit point**. From here on the restore is finished,
   never undone;
3. the old index files are deleted, the copy's database replaces ``memory.db`` and the
   copy's index files are moved into the index folder, each step fsynced;
4. the ``.restoring`` folder is removed.

A crash before step 2 leaves the old store, untouched. A crash after it leaves a
``.restoring`` folder, and the next open of the store (or the next restore) finishes
steps 3–4 under the writer lock before anything reads it (``finish_restore``): the old
database never meets the backup's index files, and the restored database never goes
without them (a store that keeps each vector once at rest holds some vectors only there).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from magray.config import Settings
from magray.errors import BackupError
from magray.fileio import fsync_dir, fsync_file
from magray.memory.backends.base import Snapshot
from magray.memory.backends.sqlite.migrations import SCHEMA_VERSION, current_version
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer
from magray.memory.transfer.manifest import (
    DB_FILE,
    INDEX_DIR,
    MANIFEST,
    BackupManifest,
    bad,
    copy_hashed,
    sweep_stale,
    work_dir,
)


def layer_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {str(layer): 0 for layer in Layer}
    for layer, n in conn.execute("SELECT layer, COUNT(*) FROM records GROUP BY layer"):
        counts[str(layer)] = int(n)
    return counts


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


# -- snapshot -----------------------------------------------------------------------------
def snapshot(store: Store, index_dir: Path, work: Path) -> Snapshot:
    """Copy the index files, then the database, into ``work`` (under the writer lock)."""
    files: list[str] = []
    db_copy = work / DB_FILE
    with store.locked():
        if index_dir.is_dir():
            for path in sorted(p for p in index_dir.iterdir() if p.is_file()):
                if path.name.endswith((".tmp", ".saving")) or path.name.startswith("."):
                    continue
                (work / INDEX_DIR).mkdir(exist_ok=True)
                copy_hashed(path, work / INDEX_DIR / path.name)
                files.append(f"{INDEX_DIR}/{path.name}")
        try:
            with closing(sqlite3.connect(db_copy, isolation_level=None)) as dst:
                store.conn.backup(dst)  # one step: a consistent read snapshot
                dst.execute("PRAGMA journal_mode = DELETE")  # self-contained, no -wal beside
                schema = current_version(dst)
                counts = layer_counts(dst)
                model = _meta(dst, "embedding_model")
                dim = _meta(dst, "embedding_dim")
        except sqlite3.Error as exc:
            raise BackupError(f"the snapshot of {store.path} failed ({exc}).") from None
    fsync_file(db_copy)
    if (work / INDEX_DIR).is_dir():
        fsync_dir(work / INDEX_DIR)
    return Snapshot(
        files=(DB_FILE, *files),
        schema_version=schema,
        embedding_model=model,
        embedding_dim=int(dim) if dim else None,
        counts=counts,
    )


# -- verifying a backup ---------------------------------------------------------------------
def _stage(manifest: BackupManifest, staging: Path) -> None:
    """Copy every file into ``staging`` and check size, sha256, integrity and counts there."""
    src = manifest.path
    (staging / INDEX_DIR).mkdir(parents=True, exist_ok=True)
    for entry in manifest.files:
        path = src / entry.path
        if not path.is_file():
            raise bad(src, f"{entry.path} is missing")
        if path.stat().st_size != entry.size:
            raise bad(src, f"{entry.path} has {path.stat().st_size} bytes, expected {entry.size}")
        if copy_hashed(path, staging / entry.path) != entry.sha256:
            raise bad(src, f"{entry.path} does not match its sha256 (damaged or tampered)")
    db = staging / DB_FILE
    try:
        with closing(sqlite3.connect(db, isolation_level=None)) as conn:
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
            if problems != ["ok"]:
                raise bad(src, f"its database fails the integrity check ({problems[0]})")
            if current_version(conn) != manifest.schema_version:
                raise bad(src, "its database schema differs from the manifest")
            counts = layer_counts(conn)
            conn.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        raise bad(src, f"its database cannot be read ({exc})") from None
    expected = {str(layer): int(manifest.counts.get(str(layer), 0)) for layer in Layer}
    if counts != expected:
        raise bad(src, f"its record counts {counts} differ from the manifest's {expected}")
    fsync_file(db)


# -- restore ------------------------------------------------------------------------------
def live_records(db: Path) -> int:
    """Records in the live store (0 if it is missing or empty; -1 if it cannot be read)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(db, timeout=5.0)) as conn:
            if current_version(conn) == 0:
                return 0
            return int(conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])
    except sqlite3.Error:
        return -1


def _refuse_non_empty(db: Path, force: bool) -> None:
    if force:
        return
    n = live_records(db)
    if n != 0:
        held = f"holds {n} record(s)" if n > 0 else "exists but cannot be read"
        raise BackupError(
            f"the memory store {db} {held}; pass --force to replace it"
            " (take a backup first with `magray memory backup`)."
        )


def _retire_old_database(db: Path) -> None:
    """Fold the old WAL into the old file and leave no ``-wal``/``-shm`` beside it."""
    if db.exists():
        try:
            with closing(sqlite3.connect(db, isolation_level=None, timeout=2.0)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise BackupError(
                    f"another process has {db} open; stop other magray processes and retry."
                )
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower() or "busy" in str(exc).lower():
                raise BackupError(
                    f"another process has {db} open; stop other magray processes and retry."
                ) from None
            # a damaged old store (restoring over it with --force): its WAL is dropped below
        except sqlite3.DatabaseError:
            pass
    for suffix in ("-wal", "-shm", "-journal"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)


def restore(settings: Settings, manifest: BackupManifest, *, force: bool = False) -> None:
    """Replace the store with the backup ``manifest`` describes, verified first, all or
    nothing (see the module docstring)."""
    src = manifest.path
    if manifest.schema_version > SCHEMA_VERSION:
        raise bad(
            src,
            f"it holds schema {manifest.schema_version}, newer than this MAGRAY's"
            f" {SCHEMA_VERSION}; upgrade",
        )
    if DB_FILE not in [f.path for f in manifest.files]:
        raise bad(src, f"{MANIFEST} lists no {DB_FILE}")
    paths = settings.paths
    db = paths.memory_db
    _refuse_non_empty(db, force)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale(paths.data_dir)
    staging = work_dir(paths.data_dir, "restore")
    try:
        _stage(manifest, staging)
        busy = f"another magray process is writing to {db}; retry when it finishes."
        with _writer_lock(db, settings.memory.lock_timeout, busy):
            _finish(db, paths.index_dir)  # a restore a crash cut short, before this one
            _refuse_non_empty(db, force)  # again, now that no writer can add records
            _retire_old_database(db)
            fsync_dir(staging / INDEX_DIR)
            os.replace(staging, restoring_dir(db))  # the commit point of the restore
            fsync_dir(db.parent)
            _finish(db, paths.index_dir)
    except OSError as exc:
        raise BackupError(f"restoring {src} failed ({exc}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    Store(db, lock_timeout=settings.memory.lock_timeout).close()  # WAL + migrate


# -- finishing a committed restore ----------------------------------------------------------
def restoring_dir(db: Path) -> Path:
    """Where a committed restore's verified copy waits until it is in place."""
    return db.with_name(db.name + ".restoring")


def finish_restore(db: Path, index_dir: Path, *, lock_timeout: float) -> bool:
    """Finish a restore that a crash cut short after its commit point; True if there was one.

    Called on every open of the store before anything reads it (one ``stat`` when there is
    nothing to finish).
    """
    if not restoring_dir(db).is_dir():
        return False
    busy = f"a restore of {db} is being finished by another magray process; retry."
    with _writer_lock(db, lock_timeout, busy):
        try:
            return _finish(db, index_dir)
        except OSError as exc:
            raise BackupError(
                f"finishing the restore of {db} failed ({exc}); free the problem and retry."
            ) from None


@contextmanager
def _writer_lock(db: Path, timeout: float, busy: str) -> Iterator[None]:
    """The store's one-writer lock (``Store.locked``'s file), for code without a ``Store``."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(db) + ".lock")
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise BackupError(busy) from None
    try:
        yield
    finally:
        lock.release()


def _finish(db: Path, index_dir: Path) -> bool:
    """Steps 3–4 of a restore, each safe to repeat after a crash (hold the writer lock)."""
    pending = restoring_dir(db)
    if not pending.is_dir():
        return False
    if (pending / DB_FILE).exists():
        _retire_old_database(db)  # no WAL of the old database may outlive it
        if index_dir.is_dir():
            for old in index_dir.iterdir():
                if old.is_file():
                    old.unlink()
            fsync_dir(index_dir)
        os.replace(pending / DB_FILE, db)
        fsync_dir(db.parent)
    staged = pending / INDEX_DIR
    names = sorted(p.name for p in staged.iterdir() if p.is_file()) if staged.is_dir() else []
    if names:
        index_dir.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(staged / name, index_dir / name)
        fsync_dir(index_dir)
    shutil.rmtree(pending)
    fsync_dir(db.parent)
    return True
