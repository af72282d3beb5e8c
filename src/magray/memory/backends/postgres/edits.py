"""Edits of one stored record on PostgreSQL: pin, move to another layer, replace its text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.errors import Listing, NotFoundError, UsageError, see
from magray.hashing import content_hash
from magray.memory.backends.postgres.core import Core, vector_param
from magray.memory.records import Layer

if TYPE_CHECKING:
    import psycopg


def _row(conn: psycopg.Connection[Any], num: int) -> tuple[str, str, str]:
    row = conn.execute(
        "SELECT id, layer, project FROM records WHERE num = %s FOR UPDATE", (num,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no memory labelled {num}", see(Listing.MEMORIES))
    return str(row[0]), str(row[1]), str(row[2])


def _twin(
    conn: psycopg.Connection[Any], num: int, layer: str, project: str, chash: str
) -> str | None:
    row = conn.execute(
        "SELECT id FROM records WHERE layer = %s AND project = %s AND content_hash = %s"
        " AND num <> %s",
        (layer, project, chash, num),
    ).fetchone()
    return None if row is None else str(row[0])


class EditsMixin(Core):
    def update(
        self,
        num: int,
        *,
        now: float,
        pinned: bool | None = None,
        layer: Layer | None = None,
    ) -> None:
        with self._write() as conn:
            rid, old_layer, project = _row(conn, num)
            if layer is not None and str(layer) != old_layer:
                row = conn.execute(
                    "SELECT content_hash FROM records WHERE num = %s", (num,)
                ).fetchone()
                chash = str(row[0]) if row else ""
                twin = _twin(conn, num, str(layer), project, chash)
                if twin is not None:
                    raise UsageError(
                        f"{layer} already holds the same text as {rid} ({twin});"
                        " forget one of them."
                    )
                conn.execute(
                    "UPDATE records SET layer = %s, layer_since = %s, updated_at = %s"
                    " WHERE num = %s",
                    (str(layer), now, now, num),
                )
            if pinned is not None:
                conn.execute(
                    "UPDATE records SET pinned = %s, updated_at = %s WHERE num = %s",
                    (pinned, now, num),
                )

    def replace_text(
        self, num: int, text: str, vector: bytes, *, model_id: str, now: float
    ) -> None:
        chash = content_hash(text)
        with self._write() as conn:
            _, layer, project = _row(conn, num)
            twin = _twin(conn, num, layer, project, chash)
            if twin is not None:
                raise UsageError(f"{twin} in {layer} already has that text; forget one of them.")
            conn.execute(
                "UPDATE records SET text = %s, content_hash = %s, embedding = %s,"
                " embedding_model = %s, updated_at = %s WHERE num = %s",
                (text, chash, vector_param(vector), model_id, now, num),
            )
