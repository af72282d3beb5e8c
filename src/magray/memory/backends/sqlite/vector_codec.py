"""How the SQLite store keeps a vector at rest: float32, or float16 with a one-byte tag.

Callers hand the backend little-endian float32 bytes and get float32 bytes back
(``Backend.vectors``). A store whose index is ``f16`` or ``i8`` (``memory.vector_dtype``)
keeps new vectors as float16 — half the bytes — since its searches already see them at
that precision; a value outside float16's range keeps its vector float32. A float16 blob
is ``2·dim`` bytes plus the tag byte ``HALF_TAG`` at the end: its length is odd, while a
float32 blob's is a multiple of four, so a blob says which it is without knowing its
dimension, and stores holding both (written under different settings) read them all.
Converting float32 → float16 → float32 → float16 gives the same bytes again, so export and
import round trips of a float16 store are exact.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from magray.errors import IndexCorruptError

HALF_TAG = b"\x10"
HALF_DTYPES = ("f16", "i8")  # index dtypes whose stores keep float16 vectors
F16_MAX = 65504.0


def is_half(blob: bytes) -> bool:
    return len(blob) % 2 == 1


def at_rest(blob: bytes, half: bool) -> bytes:
    """``blob`` (float32 bytes) as the store keeps it: float16 + tag when ``half`` and
    every value fits, else unchanged."""
    if not half or is_half(blob) or len(blob) % 4:
        return blob
    vec = np.frombuffer(blob, dtype="<f4")
    if vec.size and float(np.abs(vec).max()) > F16_MAX:
        return blob
    return vec.astype("<f2").tobytes() + HALF_TAG


def to_float32(blob: bytes) -> npt.NDArray[np.float32]:
    """A stored vector (either form) as float32 values."""
    if is_half(blob):
        return np.frombuffer(blob, dtype="<f2", count=(len(blob) - 1) // 2).astype(np.float32)
    return np.frombuffer(blob, dtype="<f4").astype(np.float32, copy=False)


def float32_bytes(blob: bytes) -> bytes:
    """A stored vector (either form) as little-endian float32 bytes."""
    return to_float32(blob).astype("<f4").tobytes() if is_half(blob) else blob


def dimension(blob: bytes) -> int:
    """How many values a stored vector holds (a float32 blob of odd size counts -1)."""
    if is_half(blob):
        return (len(blob) - 1) // 2
    return len(blob) // 4 if len(blob) % 4 == 0 else -1


def decode(blob: bytes, dim: int) -> npt.NDArray[np.float32]:
    """A stored vector as float32 values, checked to have ``dim`` of them."""
    if dimension(blob) != dim:
        raise IndexCorruptError(
            f"a stored vector has {dimension(blob)} dimensions, expected {dim}."
        )
    return to_float32(blob)
