"""What ``memory.vector_dtype`` means for a store: the scalar type of its vector index.

``auto`` (the default) lets each store keep the type it has:

1. the type recorded in the store's ``meta`` table (``vector_dtype``): written with the
   store's first vector and again whenever vectors are written under another type;
2. else, in a store written before that was recorded, the type of its index files for the
   store's model (the one reflecting the latest write, when a change of setting left
   several);
3. else ``f16`` for a store that never held a vector (a new store), ``f32`` (the default
   before ``auto``) for one that did but has no index file left.

Any other value is used as it is, as before ``auto``: the index is rebuilt in that type on
the first open that needs it, and the store records it with its next vector write.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from magray.sqlite_migrations import read_only

AUTO = "auto"
DTYPES = ("f32", "f16", "i8")
NEW_STORE = "f16"  # searches ~2x faster than f32 at the same recall, half the file
OLD_DEFAULT = "f32"  # the default before ``auto``: stores from then that lost their files
DTYPE_META = "vector_dtype"
_LAYERS = ("interact", "insights", "assets")  # the per-layer files of earlier versions


def slug(model_id: str) -> str:
    """``model_id`` as it appears in index file names."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)


def _applied_seq(path: Path) -> int:
    """The journal sequence ``path``'s sidecar says it reflects (-1 when unreadable)."""
    try:
        raw = json.loads(Path(str(path) + ".json").read_text(encoding="utf-8"))
        return int(raw["applied_seq"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def file_dtype(index_dir: Path, model_id: str) -> str | None:
    """The scalar type of the index files ``index_dir`` holds for ``model_id`` (the one
    reflecting the latest journal sequence, then the newest; None when there are none)."""
    name = slug(model_id)
    found: list[tuple[int, int, str]] = []
    for dtype in DTYPES:
        stems = ("vectors", *_LAYERS)
        for path in (index_dir / f"{stem}.{name}.{dtype}.usearch" for stem in stems):
            with contextlib.suppress(OSError):
                found.append((_applied_seq(path), path.stat().st_mtime_ns, dtype))
    return max(found)[2] if found else None


def resolve_dtype(setting: str, meta: Callable[[str], str | None], index_dir: Path) -> str:
    """The scalar type a store's index uses under ``setting`` (see the module's docstring);
    ``meta`` reads the store's ``meta`` table."""
    if setting != AUTO:
        return setting
    recorded = meta(DTYPE_META)
    if recorded in DTYPES:
        return str(recorded)
    model = meta("embedding_model")
    if model is None:
        return NEW_STORE
    return file_dtype(index_dir, model) or OLD_DEFAULT


def peek(db: Path, index_dir: Path, setting: str) -> str | None:
    """:func:`resolve_dtype` for the store at ``db`` without opening it as a store (no lock, no
    migration, nothing created): for ``magray config show``. None when it cannot be read."""
    if setting != AUTO or not db.exists():
        return resolve_dtype(setting, lambda _key: None, index_dir)
    try:
        with read_only(db) as c:
            if not c.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
                return NEW_STORE

            def meta(key: str) -> str | None:
                row = c.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
                return None if row is None else str(row[0])

            return resolve_dtype(setting, meta, index_dir)
    except sqlite3.Error:
        return None
