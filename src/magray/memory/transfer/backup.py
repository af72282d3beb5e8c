"""Online backups of the memory store and verified, all-or-nothing restores.

A backup is a folder holding what the backend's ``snapshot`` wrote (for SQLite:
``memory.db`` and copies of the index files) and ``manifest.json`` with the versions, the
embedding model, the record count of each layer and the size and sha256 of every file.

The backup is written in a hidden work folder beside its target
(``.NAME.magray-tmp-PID-….tmp``) and moved into place when complete; one left by a killed
process is removed by the next backup or restore there. ``restore`` reads the manifest
strictly and hands it to the backend, which verifies every file before it changes anything.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from magray import __version__
from magray.config import Settings
from magray.errors import BackupError
from magray.fileio import fsync_dir, fsync_file
from magray.memory.backends import backend_kind
from magray.memory.transfer.manifest import (
    FORMAT_VERSION,
    MANIFEST,
    BackupFile,
    BackupManifest,
    read_manifest,
    retired_dir,
    sha256,
    sweep_stale,
    work_dir,
)

if TYPE_CHECKING:
    from magray.memory.service import Memory

__all__ = ["MANIFEST", "backup", "default_backup_dir", "restore"]


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
    try:
        _check_dest(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(dest.parent)
        work = work_dir(dest.parent, dest.name)
    except OSError as exc:
        raise BackupError(
            f"cannot write a backup to {dest} ({exc.strerror or exc}); give a new or empty"
            " directory in a folder you can write to."
        ) from None
    try:
        snap = memory.backend.snapshot(work)
        files = tuple(
            BackupFile(name, (work / name).stat().st_size, sha256(work / name))
            for name in snap.files
        )
        manifest = BackupManifest(
            path=dest,
            format=FORMAT_VERSION,
            magray_version=__version__,
            schema_version=snap.schema_version,
            embedding_model=snap.embedding_model,
            embedding_dim=snap.embedding_dim,
            created_at=time.time(),
            counts=dict(snap.counts),
            files=files,
        )
        (work / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2), encoding="utf-8")
        fsync_file(work / MANIFEST)
        fsync_dir(work)
        _install_dir(work, dest)
        return manifest
    except OSError as exc:
        raise BackupError(
            f"writing the backup to {dest} failed ({exc.strerror or exc}); nothing was"
            " replaced: check the free space there, or give another directory."
        ) from None
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


def restore(settings: Settings, src: Path, *, force: bool = False) -> BackupManifest:
    """Replace the memory store with the backup in ``src``, verified first, all or nothing.

    Args:
        settings: which backend and store to restore into.
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
    backend_kind(settings.memory.backend).restore(settings, manifest, force=force)
    return manifest
