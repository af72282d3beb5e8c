"""Writes of new records into the SQLite store, many per statement.

A bulk add is one transaction per batch: the dedup keys of the whole batch are looked up in
a few statements, the new rows go in through one ``executemany`` with their labels chosen
up front (past both the AUTOINCREMENT counter and the largest label, as SQLite would
choose them), and identical content already stored is bumped instead. Triggers keep the
keyword index and the vector journal in step inside the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from magray.hashing import content_hash
from magray.memory.backends.record_row import RECORD_ROW_COLUMNS, RECORD_ROW_WIDTH, record_row
from magray.memory.backends.sqlite import access_stats, vector_backlog
from magray.memory.backends.values import InsertResult
from magray.memory.records import NewRecord, new_id

Key = tuple[str, str, str]  # layer, project, content hash: the dedup key
_LOOKUP_CHUNK = 300  # dedup keys per statement (three parameters each)

_INSERT = (
    f"INSERT INTO records (num, {RECORD_ROW_COLUMNS}, embedding_model, vector, occurred_at)"
    f" VALUES ({', '.join(['?'] * (RECORD_ROW_WIDTH + 4))})"
)


def lookup_sql(count: int) -> str:
    """The statement that finds the stored records of ``count`` dedup keys: the keys drive
    (CROSS JOIN keeps them the outer loop), each one a search of ``records_dedup``."""
    values = ",".join(["(?, ?, ?)"] * count)
    return (
        "SELECT r.layer, r.project, r.content_hash, r.num, r.id, r.tags, r.embedding_model"
        f" FROM (VALUES {values}) AS k CROSS JOIN records r ON r.layer = k.column1"
        " AND r.project = k.column2 AND r.content_hash = k.column3"
    )


def _stored(conn: sqlite3.Connection, keys: Sequence[Key]) -> dict[Key, tuple[Any, ...]]:
    """(num, id, tags, embedding_model) of the records already holding ``keys``."""
    found: dict[Key, tuple[Any, ...]] = {}
    for i in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[i : i + _LOOKUP_CHUNK]
        rows = conn.execute(lookup_sql(len(chunk)), [part for key in chunk for part in key])
        for layer, project, chash, *rest in rows:
            found[(layer, project, chash)] = tuple(rest)
    return found


def _next_num(conn: sqlite3.Connection) -> int:
    """The label SQLite's AUTOINCREMENT would give the next record (never one used before)."""
    row = conn.execute(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'records'), 0),"
        " COALESCE((SELECT MAX(num) FROM records), 0)) + 1"
    ).fetchone()
    return int(row[0])


def _bump(
    conn: sqlite3.Connection,
    stored: tuple[Any, ...],
    item: NewRecord,
    tags: tuple[str, ...],
    vector: bytes | None,
    model_id: str | None,
    now: float,
    apart: str | None,
) -> tuple[int, str, tuple[str, ...]]:
    """Count one more use of a stored record with the same content; returns its label, id
    and merged tags."""
    num, id_, old_tags, old_model = stored
    merged = tuple(dict.fromkeys((*json.loads(old_tags), *tags)))
    conn.execute(
        "UPDATE records SET updated_at = ?, tags = ?, importance = MAX(importance, ?),"
        " pinned = MAX(pinned, ?) WHERE num = ?",
        (now, json.dumps(merged), item.importance, int(item.pinned), num),
    )
    access_stats.add(conn, num, 1, now)
    if vector is not None and old_model != model_id:
        inline, kept = vector_backlog.split(vector, apart)
        conn.execute(
            "UPDATE records SET vector = ?, embedding_model = ? WHERE num = ?",
            (inline, model_id, num),
        )
        vector_backlog.put(conn, [(num, kept)])
    conn.execute("INSERT INTO access_log (num, at) VALUES (?, ?)", (num, now))
    conn.executemany(
        "INSERT OR IGNORE INTO record_tags (num, tag) VALUES (?, ?)", [(num, t) for t in merged]
    )
    return int(num), str(id_), merged


def insert_many(
    conn: sqlite3.Connection,
    items: Sequence[tuple[NewRecord, bytes | None]],
    *,
    model_id: str | None,
    now: float,
    apart: str | None = None,
) -> list[InsertResult]:
    """Insert each (record, vector) or, if the same content is in the same layer+project
    (stored before, or earlier in ``items``), bump that record. Runs inside the caller's
    write transaction; results follow the order of ``items``. ``apart`` is the index dtype
    of a store that keeps vectors apart until indexed (``vector_backlog``), else None."""
    keys = [(str(item.layer), item.project or "", content_hash(item.text)) for item, _ in items]
    known = _stored(conn, list(dict.fromkeys(keys)))
    results: list[InsertResult] = []
    rows: list[tuple[Any, ...]] = []
    tag_rows: list[tuple[int, str]] = []
    kept_rows: list[tuple[int, bytes | None]] = []
    num = _next_num(conn)

    def flush() -> None:
        conn.executemany(_INSERT, rows)
        conn.executemany("INSERT OR IGNORE INTO record_tags (num, tag) VALUES (?, ?)", tag_rows)
        vector_backlog.put(conn, kept_rows)
        rows.clear()
        tag_rows.clear()
        kept_rows.clear()

    for (item, vector), key in zip(items, keys, strict=True):
        tags = tuple(dict.fromkeys(item.tags))
        stored = known.get(key)
        if stored is not None:
            if rows:  # the record to bump may be among those not written yet
                flush()
            bumped, id_, merged = _bump(conn, stored, item, tags, vector, model_id, now, apart)
            model = stored[3] if vector is None else model_id
            known[key] = (bumped, id_, json.dumps(merged), model)
            results.append(InsertResult(num=bumped, id=id_, layer=item.layer, created=False))
            continue
        id_ = new_id()
        tags_json = json.dumps(tags) if tags else "[]"
        row = record_row(item, id_=id_, chash=key[2], tags=tags_json, now=now)
        inline, kept = vector_backlog.split(vector, apart)
        model = model_id if vector is not None else None
        rows.append((num, *row, model, inline, item.occurred_at))
        if kept is not None:
            kept_rows.append((num, kept))
        tag_rows.extend((num, t) for t in tags)
        known[key] = (num, id_, tags_json, model_id if vector is not None else None)
        results.append(InsertResult(num=num, id=id_, layer=item.layer, created=True))
        num += 1
    if rows:
        flush()
    return results
