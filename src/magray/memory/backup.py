"""Online backups of the memory store and verified, all-or-nothing restores.

A backup is a directory::

    memory.db        a consistent snapshot made with SQLite's online backup API
    index/...        copies of the derived vector index files (optional: they are rebuilt)
    manifest.json    versions, model, record counts per layer, sha256 + size of every file

``backup`` runs while other processes read and write. The index files are copied first,
under the writer lock, so none is half-written and none is ahead of the database snapshot
taken right after (an index behind the store just catches up from the journal).

``restore`` checks everything before it touches the live store: the manifest, every file's
size and sha256, the schema version, ``PRAGMA integrity_check`` and the record counts of a
verified temporary copy. Only then, holding the writer lock, it swaps the files in:

1. the old database is checkpointed and switched out of WAL mode, which needs exclusive
   access (so a restore refuses while another process has the store open) and leaves a
   self-contained file with no ``-wal``/``-shm`` whose frames could be replayed onto the
   restored database;
2. the old index files are deleted (derived: a missing file is rebuilt from the store);
3. the verified copy, already fsynced inside the data directory, replaces ``memory.db`` with
   one ``os.replace`` and the directory is fsynced;
4. the backup's index files are moved into place.

Backups and restores work in a hidden folder beside their target
(``.NAME.magray-tmp-PID-….tmp``); one left by a killed process is removed by the next
backup or restore there.

A crash before step 3 leaves the old store (its indexes are rebuilt on next open); a crash
after it leaves the restored store (with or without its index files, which are rebuilt if
missing). There is no state in between.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from magray import __version__
from magray.config import Settings
from magray.errors import BackupError
from magray.memory.backup_manifest import (
    DB_FILE,
    FORMAT_VERSION,
    INDEX_DIR,
    MANIFEST,
    BackupFile,
    BackupManifest,
    bad,
    copy_hashed,
    fsync_dir,
    fsync_file,
    layer_counts,
    meta,
    read_manifest,
    retired_dir,
    sha256,
    sweep_stale,
    work_dir,
)
from magray.memory.migrations import current_version
from magray.memory.records import Layer
from magray.memory.store import Store

if TYPE_CHECKING:
    from magray.memory.service import Memory


# -- backup -------------------------------------------------------------------------------
def default_backup_dir(settings: Settings, now: float | None = None) -> Path:
    """``<data_dir>/backups/<UTC timestamp>``, made unique if that name is taken."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    base = settings.paths.data_dir / "backups" / stamp.strftime("%Y%m%dT%H%M%SZ")
    dest, n = base, 1
    while dest.exists():
        n += 1
        dest = base.with_name(f"{base.name}-{n}")
    return dest


def _check_dest(dest: Path) -> None:
    if not dest.exists():
        return
    if not dest.is_dir():
        raise BackupError(f"{dest} is a file; give a new or empty directory for the backup.")
    if any(dest.iterdir()) and not (dest / MANIFEST).is_file():
        raise BackupError(
            f"{dest} is not empty and is not a MAGRAY backup; give a new or empty directory."
        )


def backup(memory: Memory, dest: Path | None = None) -> BackupManifest:
    """Snapshot the store (online) and its index files into ``dest`` with a manifest.

    Args:
        memory: the open memory whose store is backed up; other processes may keep using it.
        dest: a new or empty directory, or a previous backup to overwrite; default
            ``<data_dir>/backups/<UTC timestamp>``.

    Returns:
        The manifest written into the backup.

    Raises:
        BackupError: ``dest`` is a non-empty directory that is not a backup, or a write failed.
    """
    dest = (dest or default_backup_dir(memory.settings)).expanduser().absolute()
    _check_dest(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(dest.parent)
    work = work_dir(dest.parent, dest.name)
    try:
        files: list[BackupFile] = []
        index_src = memory.settings.paths.index_dir
        # Index files first and under the writer lock: whole files, never ahead of the snapshot.
        with memory.store.locked():
            if index_src.is_dir():
                for path in sorted(p for p in index_src.iterdir() if p.is_file()):
                    if path.name.endswith(".tmp"):
                        continue
                    (work / INDEX_DIR).mkdir(exist_ok=True)
                    target = work / INDEX_DIR / path.name
                    sha = copy_hashed(path, target)
                    files.append(BackupFile(f"{INDEX_DIR}/{path.name}", target.stat().st_size, sha))
        db_copy = work / DB_FILE
        try:
            with closing(sqlite3.connect(db_copy, isolation_level=None)) as dst:
                memory.store.conn.backup(dst)  # one step: a consistent read snapshot
                dst.execute("PRAGMA journal_mode = DELETE")  # self-contained, no -wal beside it
                schema = current_version(dst)
                counts = layer_counts(dst)
                model = meta(dst, "embedding_model")
                dim = meta(dst, "embedding_dim")
        except sqlite3.Error as exc:
            raise BackupError(f"the snapshot of {memory.store.path} failed ({exc}).") from None
        fsync_file(db_copy)
        files.insert(0, BackupFile(DB_FILE, db_copy.stat().st_size, sha256(db_copy)))
        manifest = BackupManifest(
            path=dest,
            format=FORMAT_VERSION,
            magray_version=__version__,
            schema_version=schema,
            embedding_model=model,
            embedding_dim=int(dim) if dim else None,
            created_at=time.time(),
            counts=counts,
            files=tuple(files),
        )
        (work / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2), encoding="utf-8")
        fsync_file(work / MANIFEST)
        if (work / INDEX_DIR).is_dir():
            fsync_dir(work / INDEX_DIR)
        fsync_dir(work)
        _install_dir(work, dest)
        return manifest
    except OSError as exc:
        raise BackupError(f"writing the backup to {dest} failed ({exc}).") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install_dir(work: Path, dest: Path) -> None:
    """Move the finished backup into place; a previous backup there is replaced."""
    old: Path | None = None
    if dest.exists():
        old = retired_dir(dest.parent, dest.name)
        os.replace(dest, old)
    os.replace(work, dest)
    fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
def _live_records(db: Path) -> int:
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
    n = _live_records(db)
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


def restore(settings: Settings, src: Path, *, force: bool = False) -> BackupManifest:
    """Replace the memory store with the backup in ``src``, verified first, all or nothing.

    Args:
        settings: whose ``paths`` name the live store and index directory.
        src: a backup directory made by ``backup``.
        force: replace a store that holds records.

    Returns:
        The manifest of the restored backup.

    Raises:
        NotFoundError: ``src`` does not exist.
        BackupError: the backup is damaged or incompatible, the live store holds records and
            ``force`` is not set, or another process has the store open. Nothing is changed.
    """
    src = src.expanduser().absolute()
    manifest = read_manifest(src)
    paths = settings.paths
    db = paths.memory_db
    _refuse_non_empty(db, force)
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale(paths.data_dir)
    staging = work_dir(paths.data_dir, "restore")
    try:
        _stage(manifest, staging)
        from filelock import FileLock, Timeout

        lock = FileLock(str(db) + ".lock")
        timeout = settings.get_float("memory.lock_timeout")
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise BackupError(
                f"another magray process is writing to {db}; retry when it finishes."
            ) from None
        try:
            _refuse_non_empty(db, force)  # again, now that no writer can add records
            _retire_old_database(db)
            index_dir = paths.index_dir
            if index_dir.is_dir():
                for old in index_dir.iterdir():
                    if old.is_file():
                        old.unlink()
                fsync_dir(index_dir)
            os.replace(staging / DB_FILE, db)  # the commit point of the restore
            fsync_dir(db.parent)
            staged_index = [p for p in (staging / INDEX_DIR).iterdir() if p.is_file()]
            if staged_index:
                index_dir.mkdir(parents=True, exist_ok=True)
                for path in staged_index:
                    os.replace(path, index_dir / path.name)
                fsync_dir(index_dir)
        finally:
            lock.release()
    except OSError as exc:
        raise BackupError(f"restoring {src} failed ({exc}).") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    Store(db, lock_timeout=settings.get_float("memory.lock_timeout")).close()  # WAL + migrate
    return manifest
