"""A backup of a whole MAGRAY home: memory, tasks, conversations, usage, audit, settings.

``magray memory backup`` keeps the memory store safe; a user restoring a backup expects all
of MAGRAY back, so ``magray backup`` adds everything else the home holds:

```
DIR/
  manifest.json        what is inside, with sizes and sha256
  memory/              a memory backup (its own manifest: see ``memory.backup``)
  data/<name>.db       the other SQLite databases, each an online snapshot
  config/<file>.toml   config.toml, policy.toml, mcp.toml (keys.toml only when asked)
  tenants/<name>/      each tenant of `magray serve`: its own memory/ and data/<name>.db
```

Restore verifies every checksum (and the memory backup's own) before it changes anything,
then puts each part in place with an atomic rename. The API keys file is left out unless
``include_keys`` is set: a backup folder is easy to copy somewhere less private.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from magray import __version__
from magray.errors import BackupError, NotFoundError
from magray.fileio import atomic_path
from magray.paths import DATABASE_FILES

FORMAT = 1
MANIFEST = "manifest.json"
MEMORY_DIR = "memory"
#: the databases a home backup snapshots, by file stem (the memory has its own backup and the
#: embedding cache is rebuilt on use)
DATABASES = tuple(
    DATABASE_FILES[name].removesuffix(".db")
    for name in ("tasks", "conversations", "llm", "audit", "audit_chain", "server_keys")
)
CONFIG_FILES = ("config.toml", "policy.toml", "mcp.toml")
KEYS_FILE = "keys.toml"
TENANTS_DIR = "tenants"


@dataclass(frozen=True, slots=True)
class HomeBackup:
    path: Path
    parts: dict[str, dict[str, Any]]  # relative path → {"bytes", "sha256"}
    memory_records: int
    tenants: dict[str, int] = field(default_factory=dict)  # tenant → its memory records

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": FORMAT,
            "memory_records": self.memory_records,
            "tenants": self.tenants,
            "parts": self.parts,
        }


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _snapshot_db(src: Path, dest: Path) -> None:
    """An online, consistent copy of a SQLite database (readers and writers keep going)."""
    try:
        with (
            closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as conn,
            closing(sqlite3.connect(dest)) as out,
        ):
            conn.backup(out)
            out.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        raise BackupError(f"the snapshot of {src} failed ({exc}).") from None


def _backup_stores(settings: Any, work: Path) -> int:
    """The memory (``work/memory``) and the other databases (``work/data``) of ``settings``;
    returns the number of memory records."""
    from magray.memory.service import Memory
    from magray.memory.transfer.backup import backup as backup_memory

    paths = settings.paths
    (work / "data").mkdir(parents=True)
    records = 0
    # An embedded store exists once written to; a server-side store always does.
    if settings.memory.backend != "sqlite" or paths.memory_db.exists():
        with Memory(settings) as memory:
            manifest = backup_memory(memory, work / MEMORY_DIR)
        records = sum(manifest.counts.values())
    for name in DATABASES:
        src = paths.data_dir / f"{name}.db"
        if src.exists():
            _snapshot_db(src, work / "data" / src.name)
    return records


def backup_home(
    settings: Any,
    dest: Path | None = None,
    *,
    include_keys: bool = False,
    tenants: Mapping[str, Any] | None = None,
) -> HomeBackup:
    """Back up everything the home of ``settings`` holds into ``dest`` (new or empty).

    ``tenants`` maps each tenant of ``magray serve`` to its settings (the server knows how
    a tenant's store is found); each is backed up under ``tenants/<name>/``.

    Raises:
        BackupError: ``dest`` is not empty, or a part could not be copied.
    """
    paths = settings.paths
    if dest is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = paths.data_dir / "backups" / f"home-{stamp}"
    dest = dest.expanduser().absolute()
    try:
        taken = dest.exists() and (not dest.is_dir() or any(dest.iterdir()))
    except OSError as exc:
        raise BackupError(
            f"cannot look into {dest} ({exc.strerror or exc}); give a new or empty folder you"
            " can write to."
        ) from None
    if taken:
        raise BackupError(f"{dest} is not a new or empty folder; give another one.")
    work = dest.with_name(f".{dest.name}.home-tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        records = _backup_stores(settings, work)
        (work / "config").mkdir()
        parts: dict[str, dict[str, Any]] = {}
        tenant_records = {
            name: _backup_stores(tenant, work / TENANTS_DIR / name)
            for name, tenant in sorted((tenants or {}).items())
        }
        keys = (KEYS_FILE,) if include_keys else ()
        for name in (*CONFIG_FILES, *keys):
            src = paths.config_dir / name
            if src.is_file():
                shutil.copy2(src, work / "config" / name)
        for path in sorted(p for p in work.rglob("*") if p.is_file()):
            rel = path.relative_to(work).as_posix()
            if not _tenant_of(rel)[1].startswith(MEMORY_DIR + "/"):  # it checks its own
                parts[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        doc = {
            "format": FORMAT,
            "magray_version": __version__,
            "created_at": time.time(),
            "memory": (work / MEMORY_DIR).is_dir(),
            "memory_records": records,
            "tenants": {
                name: {"memory": (work / TENANTS_DIR / name / MEMORY_DIR).is_dir()}
                for name in tenant_records
            },
            "keys": include_keys,
            "parts": parts,
        }
        (work / MANIFEST).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        if dest.exists():
            dest.rmdir()
        os.replace(work, dest)
    except OSError as exc:
        raise BackupError(
            f"writing the backup to {dest} failed ({exc.strerror or exc}); nothing was kept:"
            " give a new or empty folder in a place you can write to, with free space."
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return HomeBackup(dest, parts, records, tenant_records)


def read_home_manifest(src: Path) -> dict[str, Any]:
    """The manifest of a home backup, checked against every file it names."""
    if not src.is_dir():
        raise NotFoundError(f"no backup at {src}; give the folder `magray backup` wrote.")
    try:
        doc = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "magray_backup" in doc and "parts" not in doc:
            raise BackupError(
                f"{src} is a memory backup (from `magray memory backup`), not a whole-home one:"
                f" restore it with `magray memory restore {src}`; nothing was changed."
            )
        parts = doc["parts"]
        if doc.get("format") != FORMAT or not isinstance(parts, dict):
            raise ValueError("unknown format")
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        raise BackupError(
            f"{src} is not a MAGRAY home backup (its manifest.json is missing or damaged); give"
            " the folder `magray backup` wrote."
        ) from None
    for rel, info in parts.items():
        path = src / rel
        if ".." in Path(rel).parts or not path.is_file():
            raise BackupError(
                f"the backup {src} lacks {rel}; it is incomplete, nothing was changed: restore"
                " another backup."
            )
        if path.stat().st_size != info.get("bytes") or _sha256(path) != info.get("sha256"):
            raise BackupError(
                f"{rel} in the backup {src} is damaged (checksum mismatch); nothing was changed:"
                " restore another backup."
            )
    return dict(doc)


def restore_home(
    settings: Any,
    src: Path,
    *,
    force: bool = False,
    tenant_settings: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """Put a home backup back: verified first, then each part replaced atomically.

    ``tenant_settings`` gives the settings of a tenant of ``magray serve`` by name; a backup
    that holds tenants needs it.

    Raises:
        BackupError: the backup is damaged, or the home already holds data and ``force`` is
            not set. Nothing is changed in either case.
    """
    from magray.memory.transfer.backup import restore as restore_memory
    from magray.memory.transfer.manifest import read_manifest

    src = src.expanduser().absolute()
    doc = read_home_manifest(src)
    tenants = doc.get("tenants") or {}
    if not isinstance(tenants, dict) or (tenants and tenant_settings is None):
        raise BackupError(
            f"{src} holds tenants of `magray serve`, which this restore cannot place; nothing"
            " was changed: restore it with `magray restore`."
        )
    owners = {name: tenant_settings(name) for name in sorted(tenants)} if tenant_settings else {}
    # (settings, backup folder of its memory) of every store the backup holds, home first
    memories = [(settings, src / MEMORY_DIR)] if doc.get("memory") else []
    memories += [
        (owners[name], src / TENANTS_DIR / name / MEMORY_DIR)
        for name in owners
        if isinstance(tenants[name], dict) and tenants[name].get("memory")
    ]
    for _, folder in memories:
        read_manifest(folder)  # each memory backup's own checks, before any change
    targets: dict[str, Path | None] = {}
    for rel in doc["parts"]:
        tenant, inner = _tenant_of(rel)
        owner = settings if tenant is None else owners.get(tenant)
        mine = tenant is None or inner.startswith("data/")  # a tenant shares the settings
        targets[rel] = _target(owner.paths, inner) if owner is not None and mine else None
    existing = [rel for rel, target in targets.items() if target is not None and target.exists()]
    existing += [
        f"{TENANTS_DIR}/{name}/memory"
        for name, owner in owners.items()
        if owner.paths.memory_db.exists()
    ]
    if existing and not force:
        raise BackupError(
            f"this home already has {', '.join(existing[:3])}; add --force to replace them."
        )
    for owner, folder in memories:
        restore_memory(owner, folder, force=force)
    for rel, target in targets.items():
        if target is None:
            continue
        with atomic_path(target) as tmp:
            shutil.copy2(src / rel, tmp)
            for suffix in ("-wal", "-shm"):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
        if target.name == KEYS_FILE:
            target.chmod(0o600)
    return doc


def _tenant_of(rel: str) -> tuple[str | None, str]:
    """The tenant a backed-up part belongs to (None: the home) and its path inside it."""
    folder, _, rest = rel.partition("/")
    if folder == TENANTS_DIR and "/" in rest:
        name, _, inner = rest.partition("/")
        return name, inner
    return None, rel


def _target(paths: Any, rel: str) -> Path | None:
    """Where a backed-up part lives in the home (None for names this version does not know)."""
    folder, _, name = rel.partition("/")
    if folder == "data" and name.removesuffix(".db") in DATABASES:
        return Path(paths.data_dir) / name
    if folder == "config" and name in (*CONFIG_FILES, KEYS_FILE):
        return Path(paths.config_dir) / name
    return None
