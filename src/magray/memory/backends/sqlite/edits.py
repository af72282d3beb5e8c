"""Edits of one stored record: pin, move to another layer, replace its text."""

from __future__ import annotations

import sqlite3

from magray.errors import Listing, NotFoundError, UsageError, see
from magray.hashing import content_hash
from magray.memory.backends.sqlite import vector_backlog
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer


def _row(conn: sqlite3.Connection, num: int) -> tuple[str, str, str, str]:
    row = conn.execute(
        "SELECT id, layer, project, content_hash FROM records WHERE num = ?", (num,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no memory labelled {num}", see(Listing.MEMORIES))
    return str(row[0]), str(row[1]), str(row[2]), str(row[3])


def _twin(conn: sqlite3.Connection, num: int, layer: str, project: str, chash: str) -> str | None:
    row = conn.execute(
        "SELECT id FROM records WHERE layer = ? AND project = ? AND content_hash = ? AND num != ?",
        (layer, project, chash, num),
    ).fetchone()
    return None if row is None else str(row[0])


def update(
    store: Store,
    num: int,
    *,
    now: float,
    pinned: bool | None = None,
    layer: Layer | None = None,
) -> None:
    """Pin/unpin or move the record ``num`` (see ``Backend.update``)."""
    with store.write() as conn:
        rid, old_layer, project, chash = _row(conn, num)
        if layer is not None and str(layer) != old_layer:
            twin = _twin(conn, num, str(layer), project, chash)
            if twin is not None:
                raise UsageError(
                    f"{layer} already holds the same text as {rid} ({twin}); forget one of them."
                )
            conn.execute(
                "UPDATE records SET layer = ?, layer_since = ?, updated_at = ? WHERE num = ?",
                (str(layer), now, now, num),
            )
        if pinned is not None:
            conn.execute(
                "UPDATE records SET pinned = ?, updated_at = ? WHERE num = ?",
                (int(pinned), now, num),
            )


def replace_text(
    store: Store,
    num: int,
    text: str,
    vector: bytes,
    *,
    model_id: str,
    now: float,
    apart: str | None = None,
) -> None:
    """A new text and vector for the record ``num`` (see ``Backend.replace_text``)."""
    chash = content_hash(text)
    with store.write() as conn:
        _, layer, project, _ = _row(conn, num)
        twin = _twin(conn, num, layer, project, chash)
        if twin is not None:
            raise UsageError(f"{twin} in {layer} already has that text; forget one of them.")
        inline, kept = vector_backlog.split(vector, apart)
        conn.execute(
            "UPDATE records SET text = ?, content_hash = ?, vector = ?, embedding_model = ?,"
            " updated_at = ? WHERE num = ?",
            (text, chash, inline, model_id, now, num),
        )
        vector_backlog.put(conn, [(num, kept)])
