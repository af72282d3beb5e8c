"""The manifest of a MAGRAY backup and the file helpers backups are made with.

``manifest.json`` records the backup format, MAGRAY and schema versions, the embedding model,
the record count of each layer, and the size and sha256 of every file in the backup.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from magray.errors import BackupError, NotFoundError, see

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_FILE = "memory.db"
INDEX_DIR = "index"
_CHUNK = 1 << 20
_MAX_MANIFEST = 16 << 20  # a manifest lists a handful of files: a few KiB
# Work folders of backups and restores: `.<name>.magray-tmp-<pid>-<random>.tmp`. One whose
# process is gone (killed mid-way) is removed by the next backup or restore beside it.
_TEMP_TAG = "magray-tmp-"
_TEMP_NAME = re.compile(r"^\..*\.magray-tmp-(\d+)-[^/]*\.tmp$")


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One file of a backup, relative to the backup directory."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class BackupManifest:
    """What ``manifest.json`` says about a backup."""

    path: Path
    format: int
    magray_version: str
    schema_version: int
    embedding_model: str | None
    embedding_dim: int | None
    created_at: float
    counts: Mapping[str, int]
    files: tuple[BackupFile, ...]

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "magray_backup": self.format,
            "magray_version": self.magray_version,
            "schema_version": self.schema_version,
            "embedding_model": self.embedding_model,
            "embedding_dim": self.embedding_dim,
            "created_at": datetime.fromtimestamp(self.created_at, UTC).isoformat(),
            "created_at_unix": self.created_at,
            "counts": dict(self.counts),
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
        }


# -- small file helpers -------------------------------------------------------------------
def work_dir(parent: Path, name: str) -> Path:
    """A new hidden work folder in ``parent``, named so that ``sweep_stale`` knows its owner."""
    tag = f".{name}.{_TEMP_TAG}{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=tag, suffix=".tmp", dir=parent))


def retired_dir(parent: Path, name: str) -> Path:
    """Where a replaced backup waits to be deleted (swept like a work folder if left behind)."""
    return parent / f".{name}.{_TEMP_TAG}{os.getpid()}-old.tmp"


def sweep_stale(parent: Path) -> list[Path]:
    """Delete the work folders in ``parent`` whose process no longer runs; returns them."""
    swept: list[Path] = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return swept
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match and entry.is_dir() and not process_running(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(entry)
    return swept


def process_running(pid: int) -> bool:
    """Whether ``pid`` may still run (True where that cannot be told)."""
    if pid == os.getpid() or os.name != "posix":
        return True  # never guess on systems without signal 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but belongs to someone else
    return True


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashed(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst``, fsync it, and return the sha256 of the bytes written."""
    digest = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


# -- reading and verifying a backup -------------------------------------------------------
def bad(src: Path, why: str) -> BackupError:
    return BackupError(f"{src} is not a usable backup: {why}; nothing was changed.")


def read_manifest(src: Path) -> BackupManifest:
    """Parse ``src/manifest.json`` strictly; raises BackupError naming what is wrong."""
    if not src.exists():
        raise NotFoundError(f"no backup at {src}", see("magray memory backup"))
    path = src / MANIFEST
    if not path.is_file():
        raise bad(src, f"it has no {MANIFEST}")
    try:
        if path.stat().st_size > _MAX_MANIFEST:
            raise ValueError("too large")
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "parts" in data and "magray_backup" not in data:
            raise BackupError(
                f"{src} is a whole-home backup (from `magray backup`): restore it with `magray"
                f" restore {src}`, or only its memory with `magray memory restore"
                f" {src / 'memory'}`; nothing was changed."
            )
        fmt = data["magray_backup"]
        schema = data["schema_version"]
        counts = data["counts"]
        files = data["files"]
        model = data.get("embedding_model")
        dim = data.get("embedding_dim")
        ok = (
            isinstance(fmt, int)
            and isinstance(schema, int)
            and isinstance(counts, dict)
            and all(isinstance(v, int) for v in counts.values())
            and isinstance(files, list)
            and (model is None or isinstance(model, str))
            and (dim is None or isinstance(dim, int))
        )
        entries = tuple(BackupFile(str(f["path"]), int(f["size"]), str(f["sha256"])) for f in files)
        created = float(data.get("created_at_unix", 0.0))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError, OSError):
        raise bad(src, f"{MANIFEST} is damaged or truncated") from None
    if not ok:
        raise bad(src, f"{MANIFEST} has fields of the wrong type")
    if fmt > FORMAT_VERSION:
        raise bad(
            src, f"it is backup format {fmt}, newer than this MAGRAY reads ({FORMAT_VERSION})"
        )
    names = [f.path for f in entries]
    for name in names:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts:
            raise bad(src, f"{MANIFEST} names an unsafe path {name!r}")
        if len(parts) > 1 and (parts[0] != INDEX_DIR or len(parts) != 2):
            raise bad(src, f"{MANIFEST} names an unexpected file {name!r}")
    return BackupManifest(
        path=src,
        format=fmt,
        magray_version=str(data.get("magray_version", "?")),
        schema_version=schema,
        embedding_model=model,
        embedding_dim=dim,
        created_at=created,
        counts={str(k): int(v) for k, v in counts.items()},
        files=entries,
    )
