"""Bulk writes of new records into the SQLite store (``backends.sqlite.inserts``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from magray.config import load_settings
from magray.memory.backends.sqlite.inserts import lookup_sql
from magray.memory.backends.sqlite.migrations import migrate
from magray.memory.maintenance import verify
from magray.memory.records import Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

REPO = Path(__file__).resolve().parents[2]


def make() -> Memory:
    return Memory(load_settings({}), embedder=HashEmbedder())


def test_a_batch_bumps_content_stored_before_and_repeated_within_it(magray_home: Path) -> None:
    memory = make()
    first = memory.remember(NewRecord(text="the ferry leaves at nine", tags=("travel",)))
    results = memory.remember_many(
        [
            NewRecord(text="pack the blue tent"),
            NewRecord(text="the ferry leaves at nine", tags=("boats",)),
            NewRecord(text="pack the blue tent", tags=("camping",)),
            NewRecord(text="pack the blue tent", layer=Layer.ASSETS),  # another layer: new
        ]
    )
    assert [r.created for r in results] == [True, False, False, True]
    assert results[1].id == first.id
    assert results[2].id == results[0].id
    assert results[3].id != results[0].id
    tent = memory.get(results[0].id)
    assert (tent.tags, tent.access_count) == (("camping",), 1)
    ferry = memory.get(first.id)
    assert (ferry.tags, ferry.access_count) == (("travel", "boats"), 1)
    assert memory.backend.count() == 3
    # The tag table follows the merged tags, so filtering by tag finds the bumped records.
    conn = sqlite3.connect(magray_home / "data" / "memory.db")
    tags = conn.execute("SELECT tag, COUNT(*) FROM record_tags GROUP BY tag ORDER BY tag")
    assert tags.fetchall() == [("boats", 1), ("camping", 1), ("travel", 1)]
    conn.close()
    memory.close()


def test_labels_are_never_reused_after_the_newest_record_is_forgotten(magray_home: Path) -> None:
    memory = make()
    a, b = memory.remember_many([NewRecord(text="alpha note"), NewRecord(text="beta note")])
    before = {row.record.id: row.num for row in memory.backend.iter_records()}
    memory.forget(b.id)
    (c,) = memory.remember_many([NewRecord(text="gamma note")])
    after = {row.record.id: row.num for row in memory.backend.iter_records()}
    assert after[c.id] > before[b.id] > before[a.id]
    # Keyword index and vector journal follow the new rows (both are written by triggers).
    assert [
        h.record.id for h in memory.recall(Query(text="gamma", k=5, mode=SearchMode.KEYWORD))
    ] == [c.id]
    memory.close()


def test_the_dedup_lookup_searches_the_dedup_index() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    migrate(conn)
    plan = conn.execute("EXPLAIN QUERY PLAN " + lookup_sql(3), ["x"] * 9).fetchall()
    details = [row[3] for row in plan]
    assert any("USING INDEX records_dedup" in d for d in details), details
    assert not any(d == "SCAN r" or d.startswith("SCAN records") for d in details), details


BULK_ADD_FOREVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from magray.config import load_settings
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    memory = Memory(load_settings(), embedder=HashEmbedder())
    batch = 0
    while True:
        items = [NewRecord(text=f"bulk note {{batch}} {{i}}") for i in range(1500)]
        for result in memory.remember_many(items):
            print(result.id)
        print("acknowledged", flush=True)
        batch += 1
    """
)


def test_kill_9_during_bulk_add_loses_nothing_acknowledged(magray_home: Path) -> None:
    script = BULK_ADD_FOREVER.format(repo=str(REPO))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    acknowledged: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        pending: list[str] = []
        while len(acknowledged) < 3000:  # two whole bulk adds returned; the third is running
            line = proc.stdout.readline().strip()
            assert line, "the writer stopped before it was killed"
            if line == "acknowledged":
                acknowledged.extend(pending)
                pending = []
            else:
                pending.append(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    memory = make()
    stored = {row.record.id for row in memory.backend.iter_records()}
    assert set(acknowledged) <= stored
    assert verify(memory).ok
    hits = memory.recall(Query(text="bulk note 1 7", k=3, mode=SearchMode.KEYWORD))
    assert hits
    memory.close()


def test_sync_after_a_bulk_add_leaves_no_wal_behind(magray_home: Path) -> None:
    memory = make()
    memory.remember_many([NewRecord(text=f"bulk note {i}") for i in range(3000)])
    wal = magray_home / "data" / "memory.db-wal"
    assert wal.stat().st_size > 0
    memory.sync_indexes()
    assert wal.stat().st_size == 0
    assert len(memory.recall(Query(text="bulk note 7", k=3, mode=SearchMode.KEYWORD))) == 3
    # A reader of an older snapshot (another process) only makes the truncation wait.
    reader = sqlite3.connect(magray_home / "data" / "memory.db")
    reader.execute("BEGIN")
    assert reader.execute("SELECT COUNT(*) FROM records").fetchone() == (3000,)
    memory.remember(NewRecord(text="one more"))
    assert memory.backend.store.checkpoint(wait=0.0) is False
    reader.rollback()
    reader.close()
    assert memory.backend.store.checkpoint() is True
    assert wal.stat().st_size == 0
    memory.close()
