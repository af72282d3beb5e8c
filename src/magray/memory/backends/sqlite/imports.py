"""Exact import of exported records into the SQLite backend (ids, times and stats kept)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from magray.memory.backends.sqlite import access_stats, vector_backlog
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer, Record


def _exists(conn: sqlite3.Connection, rid: str, layer: str, project: str, chash: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM records WHERE id = ? OR (layer = ? AND project = ? AND content_hash = ?)",
        (rid, layer, project, chash),
    ).fetchone()
    return row is not None


def is_duplicate(store: Store, rid: str, layer: Layer, project: str, chash: str) -> bool:
    return _exists(store.conn, rid, str(layer), project, chash)


def _insert(
    conn: sqlite3.Connection, r: Record, vector: bytes, model: str, apart: str | None
) -> bool:
    project = r.project or ""
    if _exists(conn, r.id, str(r.layer), project, r.content_hash):
        return False
    src = r.source
    inline, kept = vector_backlog.split(vector, apart)
    cur = conn.execute(
        "INSERT INTO records (id, text, layer, kind, tags, project, session, source_uri,"
        " source_start, source_end, source_line_start, source_line_end, created_at, updated_at,"
        " layer_since, importance, pinned, promotion_score, content_hash, embedding_model,"
        " vector, occurred_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            r.id,
            r.text,
            str(r.layer),
            r.kind,
            json.dumps(list(r.tags)),
            project,
            r.session,
            src.uri if src else None,
            src.start if src else None,
            src.end if src else None,
            src.line_start if src else None,
            src.line_end if src else None,
            r.created_at,
            r.updated_at,
            r.layer_since,
            r.importance,
            int(r.pinned),
            r.promotion_score,
            r.content_hash,
            model,
            inline,
            r.occurred_at,
        ),
    )
    num = int(cur.lastrowid or 0)
    access_stats.add(conn, num, r.access_count, r.last_access_at)
    conn.executemany(
        "INSERT OR IGNORE INTO record_tags (num, tag) VALUES (?, ?)", [(num, t) for t in r.tags]
    )
    if kept is not None:
        vector_backlog.put(conn, [(num, kept)])
    return True


def insert_exact(
    store: Store,
    rows: Iterable[tuple[Record, bytes]],
    *,
    model_id: str,
    dim: int,
    apart: str | None = None,
) -> tuple[int, int]:
    imported = duplicates = 0
    with store.write() as conn:  # one transaction: all or nothing
        if store.meta("embedding_model") is None:
            Store.set_meta(conn, "embedding_model", model_id)
            Store.set_meta(conn, "embedding_dim", str(dim))
        for record, vector in rows:
            if _insert(conn, record, vector, model_id, apart):
                imported += 1
            else:
                duplicates += 1
    return imported, duplicates
