"""An index file and its JSON sidecar on disk: what they hold and how a save stays safe.

Each index file ``<name>`` has a sidecar ``<name>.json`` holding an :class:`IndexState`: the
model, dimension and scalar type it was built for, the live count, the store journal
sequence it reflects (``applied_seq``, opaque here), an order-independent checksum of the
live labels and the sha256 of the index file.

A save (:func:`save_pair`, the writer lock held) goes:

1. the index is written to the staging file ``.<name>.saving`` and fsynced;
2. the sidecar describing it (sha256 included) replaces the old sidecar atomically;
3. the staging file is renamed over ``<name>`` and the folder is fsynced.

A crash before 2 leaves the old pair (and a staging file the next save overwrites); a crash
between 2 and 3 leaves a sidecar whose sha256 is the staging file's: a writer finishes that
save (:func:`finish_save`) and a reader that meets the pair meanwhile reports it as
:class:`~magray.errors.IndexCorruptError`, as it does for a damaged file. Once 3 is done the
new pair is durable, which is what lets the store drop its own copy of the vectors the file
holds (``vector_backlog``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import IndexCorruptError, UsageError
from magray.fileio import fsync_dir, fsync_file, write_atomic

FORMAT = 1
_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class IndexState:
    """What an index file holds; persisted beside it as the JSON sidecar ``<name>.json``."""

    model_id: str
    dim: int
    dtype: str  # "f32" | "f16" | "i8"
    count: int  # live vectors
    applied_seq: int  # the store's journal sequence this file reflects (set by the store)
    label_checksum: str  # xor of splitmix64(label) over the live labels, 16 hex digits
    file_sha256: str  # sha256 of the index file written by save() ("" before the first save)


# -- labels ---------------------------------------------------------------------------------
def keys_of(labels: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """``labels`` as the index's uint64 keys (a 1-D array of non-negative integers)."""
    arr = np.asarray(labels)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise UsageError("vector index labels must be a 1-D array of integers.")
    if arr.size and arr.dtype.kind == "i" and int(arr.min()) < 0:
        raise UsageError("vector index labels must be non-negative integers.")
    return arr.astype(np.uint64, copy=False)


def _mix(labels: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a well-spread 64-bit hash of each label."""
    with np.errstate(over="ignore"):
        z = labels + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def xor_labels(labels: npt.NDArray[np.uint64]) -> int:
    if len(labels) == 0:
        return 0
    return int(np.bitwise_xor.reduce(_mix(labels))) & _MASK


def label_checksum(labels: npt.ArrayLike) -> str:
    """Order-independent checksum of a set of distinct labels (as in ``IndexState``)."""
    return f"{xor_labels(keys_of(labels)):016x}"


# -- files ----------------------------------------------------------------------------------
def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def staging(path: Path) -> Path:
    """Where a save writes the new index file before the rename (one writer at a time)."""
    return path.with_name(f".{path.name}.saving")


def identity(st: os.stat_result) -> list[int]:
    """Changes whenever the file is replaced or rewritten (a rename keeps the inode and the
    mtime, so a saved file keeps the identity its sidecar recorded before the rename)."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def read_sidecar(path: Path) -> tuple[IndexState, list[int] | None]:
    """The state in ``path``'s sidecar and the file identity recorded with it."""
    try:
        raw = json.loads(sidecar(path).read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}")
        state = IndexState(
            model_id=str(raw["model_id"]),
            dim=int(raw["dim"]),
            dtype=str(raw["dtype"]),
            count=int(raw["count"]),
            applied_seq=int(raw["applied_seq"]),
            label_checksum=str(raw["label_checksum"]),
            file_sha256=str(raw["file_sha256"]),
        )
        ident = raw.get("file_identity")
        return state, [int(v) for v in ident] if isinstance(ident, list) else None
    except FileNotFoundError:
        raise IndexCorruptError(f"the vector index sidecar {sidecar(path)} is missing.") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(
            f"the vector index sidecar {sidecar(path)} is unreadable ({exc})."
        ) from None


def save_pair(index: Any, path: Path, state: IndexState) -> IndexState:
    """Write usearch ``index`` and its sidecar (steps 1-3 above); returns the saved state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = staging(path)
    index.save(str(staged))
    fsync_file(staged)
    saved = IndexState(**{**asdict(state), "file_sha256": sha256_file(staged)})
    doc: dict[str, Any] = {"format": FORMAT, **asdict(saved)}
    doc["file_identity"] = identity(os.stat(staged))
    write_atomic(sidecar(path), json.dumps(doc, indent=1).encode("utf-8"))
    fsync_dir(path.parent)
    os.replace(staged, path)
    fsync_dir(path.parent)
    return saved


def finish_save(path: Path) -> bool:
    """Complete a save interrupted between its sidecar and its rename (writer lock held);
    drop a staging file no sidecar describes. Returns whether a save was completed."""
    staged = staging(path)
    if not staged.exists():
        return False
    try:
        state, _ = read_sidecar(path)
        current = sha256_file(path) if path.exists() else ""
    except (IndexCorruptError, OSError):
        return False
    if current != state.file_sha256 and sha256_file(staged) == state.file_sha256:
        os.replace(staged, path)
        fsync_dir(path.parent)
        return True
    staged.unlink(missing_ok=True)
    return False
