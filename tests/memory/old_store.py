"""A memory store written at an older schema version, for upgrade tests."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from magray.hashing import content_hash
from magray.memory.backends.sqlite.migrations import MIGRATIONS
from magray.memory.records import new_id
from magray.sqlite_migrations import apply


def old_store(
    db: Path, *, version: int, records: Sequence[tuple[str, int, Sequence[float] | None]]
) -> list[str]:
    """Create ``db`` at schema ``version`` holding ``records`` (text, access count, the
    access log's times or None) in Interact, as a MAGRAY of that version wrote them; returns
    their ids in order. The records have no vectors."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        apply(conn, [m for m in MIGRATIONS if m[0] <= version])
        now = time.time() - 3600
        ids: list[str] = []
        for text, count, times in records:
            rid = new_id()
            last = max(times) if times else (now if count else None)
            cur = conn.execute(
                "INSERT INTO records (id, text, layer, kind, created_at, updated_at,"
                " layer_since, last_access_at, access_count, content_hash)"
                " VALUES (?, ?, 'interact', 'note', ?, ?, ?, ?, ?, ?)",
                (rid, text, now, now, now, last, count, content_hash(text)),
            )
            conn.executemany(
                "INSERT INTO access_log (num, at) VALUES (?, ?)",
                [(cur.lastrowid, t) for t in times or ()],
            )
            ids.append(rid)
        return ids
    finally:
        conn.close()
