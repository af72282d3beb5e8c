"""Vectors kept once at rest: the store holds a vector only until a saved index file does.

The HNSW file must hold every vector to search it, so a store that also kept each vector in
its rows would hold all of them twice. When the index gives a vector back exactly as the
store would keep it (an ``f32`` index, or an ``f16`` index and a float16 blob; never
``i8``), a write puts the vector in ``vector_backlog`` and an empty blob (:data:`APART`)
in ``records.vector``, which stays NOT NULL: the record has a vector, and the triggers of
``index_journal`` fire as before.

A fold (``index_sync``, the writer lock held from the journal read to the end) adds the
backlog to the index, saves the file durably (``index_file.save_pair``: fsync, rename,
folder fsync) and only then deletes, in one transaction, the backlog rows of the records
the saved file holds (:func:`clear`). A kill -9 before that delete leaves the rows, which
the next fold deletes; after it, the file holds the vectors. Freed pages go back to the
file system at once in stores created with incremental auto-vacuum.

Reading a vector (``resolve`` in ``index_sync``): the backlog row, else a non-empty
``records.vector`` (stores written before, ``i8`` stores), else the index file. A vector
found in none of them (the index file lost or damaged) is set to NULL with a warning, so
``magray memory reindex --reembed`` embeds the record's text again.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence

import numpy as np

from magray.memory.backends.sqlite.vector_codec import is_half, to_float32

APART_DTYPES = ("f32", "f16")  # index dtypes that give vectors back exactly
APART = b""  # ``records.vector`` of a record whose vector is in the backlog or the index
#: the stored vector of a record (alias ``r``): its backlog row first
VECTOR_SQL = "COALESCE((SELECT b.vector FROM vector_backlog b WHERE b.num = r.num), r.vector)"


def keeps_exactly(blob: bytes, dtype: str | None) -> bool:
    """Whether an index of ``dtype`` gives ``blob``'s values back exactly: it scales each
    vector to unit length and keeps it as ``dtype`` (``VectorIndex.add``), which must leave
    the bits the store would keep unchanged."""
    if dtype not in APART_DTYPES or (dtype == "f16" and not is_half(blob)) or len(blob) % 4 == 2:
        return False
    from magray.memory.backends.sqlite.vector_index import unit_rows

    vec = to_float32(blob)
    if not vec.size:
        return False
    unit = unit_rows(vec.reshape(1, -1))[0]
    if dtype == "f16":
        return bool(np.array_equal(unit.astype("<f2"), vec.astype("<f2")))
    return bool(np.array_equal(unit, vec))


def split(blob: bytes | None, dtype: str | None) -> tuple[bytes | None, bytes | None]:
    """(``records.vector``, backlog vector) of a vector written to a store whose index is of
    ``dtype`` (None: every vector stays in its row)."""
    if blob is None or dtype is None or not keeps_exactly(blob, dtype):
        return blob, None
    return APART, blob


def put(conn: sqlite3.Connection, rows: Sequence[tuple[int, bytes | None]]) -> None:
    """Write the backlog side of :func:`split` for each record (None drops a kept row: the
    record's vector now lives in its row or nowhere)."""
    keep = [(num, blob) for num, blob in rows if blob is not None]
    drop = [(num,) for num, blob in rows if blob is None]
    if keep:
        conn.executemany("INSERT OR REPLACE INTO vector_backlog (num, vector) VALUES (?, ?)", keep)
    if drop:
        conn.executemany("DELETE FROM vector_backlog WHERE num = ?", drop)


def pending(conn: sqlite3.Connection) -> int:
    """How many vectors wait in the backlog."""
    return int(conn.execute("SELECT COUNT(*) FROM vector_backlog").fetchone()[0])


def clear(conn: sqlite3.Connection, model_id: str, dtype: str) -> int:
    """Drop the backlog rows of the records of ``model_id`` that an index of ``dtype`` gives
    back exactly (inside the caller's write transaction, once a saved index file holds every
    such record's current vector; :func:`give_back` then returns the freed pages). Returns
    how many rows went."""
    if dtype not in APART_DTYPES:
        return 0
    exact = "" if dtype == "f32" else " AND LENGTH(vector) % 2 = 1"  # f16: tagged blobs only
    gone = conn.execute(
        "DELETE FROM vector_backlog WHERE num IN (SELECT num FROM records"
        f" WHERE embedding_model = ? AND vector IS NOT NULL){exact}",
        (model_id,),
    ).rowcount
    return int(gone)


def give_back(conn: sqlite3.Connection) -> None:
    """Return the database's free pages to the file system (outside a transaction, writer
    lock held; a no-op in stores created before incremental auto-vacuum)."""
    # sqlite3's execute() steps a statement once, which frees one page: run it to the end
    with contextlib.suppress(sqlite3.Error):  # best effort: the pages stay free in the file
        conn.executescript("PRAGMA incremental_vacuum;")


def lose(conn: sqlite3.Connection, nums: Sequence[int]) -> int:
    """Mark records whose vector is in neither the store nor the index file as having none
    (re-embedded by ``magray memory reindex --reembed``). Returns how many were marked."""
    lost = 0
    for num in nums:
        lost += conn.execute(
            "UPDATE records SET vector = NULL, embedding_model = NULL WHERE num = ?"
            " AND vector = ? AND NOT EXISTS (SELECT 1 FROM vector_backlog WHERE num = ?)",
            (num, APART, num),
        ).rowcount
    return lost
