"""Schema upgrades of the SQLite memory store, in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from magray.config import load_settings
from magray.memory.backends.sqlite.migrations import MIGRATIONS, SCHEMA_VERSION
from magray.memory.maintenance import verify
from magray.memory.records import Filters, NewRecord, Query, SearchMode, Source
from magray.memory.service import Memory
from magray.sqlite_migrations import apply
from tests.fakes import HashEmbedder


def _indexes(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        return {str(name): str(sql) for name, sql in rows if sql is not None}
    finally:
        conn.close()


def test_a_schema_4_store_gets_lean_indexes_and_keeps_its_records(magray_home: Path) -> None:
    db = magray_home / "data" / "memory.db"
    db.parent.mkdir(parents=True)
    old = sqlite3.connect(db, isolation_level=None)
    apply(old, [m for m in MIGRATIONS if m[0] <= 4])
    old.close()
    before = _indexes(db)
    assert "index_journal_layer" in before
    assert "WHERE" not in before["records_source"]

    memory = Memory(load_settings({}), embedder=HashEmbedder())  # opening migrates
    assert SCHEMA_VERSION == 7
    after = _indexes(db)
    assert "index_journal_layer" not in after
    assert after["records_source"].endswith("WHERE source_uri IS NOT NULL")
    assert after["records_session"].endswith("WHERE session IS NOT NULL")

    chat = memory.remember(NewRecord(text="the ferry leaves at nine", session="trip"))
    note = memory.remember(NewRecord(text="ferry tickets", source=Source("/notes/ferry.md")))
    memory.remember(NewRecord(text="ferry timetable"))
    assert [r.id for r in memory.list_records(Filters(session="trip"))] == [chat.id]
    assert memory.backend.has_sessions()
    hits = memory.recall(Query(text="ferry", k=5, mode=SearchMode.VECTOR))
    assert len(hits) == 3  # the journal still feeds the vector index
    gone = memory.forget_where(Filters(), source=Path("/notes/ferry.md"))
    assert [r.id for r in gone] == [note.id]
    assert verify(memory).ok
    memory.close()

    conn = sqlite3.connect(db)
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT num FROM records WHERE source_uri = ? AND project = ?"
        " AND layer = ?",
        ("/notes/ferry.md", "", "interact"),
    ).fetchall()
    conn.close()
    assert any("records_source" in row[3] for row in plan)
