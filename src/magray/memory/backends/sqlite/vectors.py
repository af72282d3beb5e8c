"""Stored vectors and layer sizes of the SQLite backend (re-embedding reads and writes)."""

from __future__ import annotations

from collections.abc import Sequence

from magray.memory.backends.base import LayerStats
from magray.memory.backends.sqlite import vector_backlog
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer


def layer_stats(store: Store, apart_bytes: int = 0) -> dict[Layer, LayerStats]:
    """Records, text bytes, vector bytes and pinned records per layer; a vector only the
    index file holds counts ``apart_bytes`` (what the store would keep for it)."""
    out: dict[Layer, LayerStats] = {}
    size = f"LENGTH({vector_backlog.VECTOR_SQL})"
    for layer in Layer:
        row = store.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(text AS BLOB))), 0),"
            f" COALESCE(SUM(CASE WHEN {size} = 0 THEN ? ELSE {size} END), 0),"
            " COALESCE(SUM(pinned), 0) FROM records r WHERE layer = ?",
            (apart_bytes, str(layer)),
        ).fetchone()
        out[layer] = LayerStats(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    return out


def count_stale_vectors(store: Store, model_id: str) -> int:
    row = store.conn.execute(
        "SELECT COUNT(*) FROM records WHERE embedding_model IS NOT ? OR vector IS NULL",
        (model_id,),
    ).fetchone()
    return int(row[0])


def stale_vectors(store: Store, model_id: str, *, after: int, limit: int) -> list[tuple[int, str]]:
    rows = store.conn.execute(
        "SELECT num, text FROM records WHERE (embedding_model IS NOT ? OR vector IS NULL)"
        " AND num > ? ORDER BY num LIMIT ?",
        (model_id, after, limit),
    ).fetchall()
    return [(int(n), str(t)) for n, t in rows]


def set_vectors(
    store: Store,
    vectors: Sequence[tuple[int, bytes]],
    model_id: str,
    apart: str | None = None,
) -> None:
    placed = [(num, *vector_backlog.split(blob, apart)) for num, blob in vectors]
    with store.write() as conn:
        conn.executemany(
            "UPDATE records SET vector = ?, embedding_model = ? WHERE num = ?",
            [(inline, model_id, num) for num, inline, _ in placed],
        )
        vector_backlog.put(conn, [(num, kept) for num, _, kept in placed])
