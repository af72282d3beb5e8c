"""Access statistics in narrow tables: the upgrade of older stores, the bounded history,
and the counters a record shows."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.memory.access import KEEP_FIRST, KEEP_LAST, KEPT, bounded
from magray.memory.backends.sqlite import access_stats
from magray.memory.maintenance import verify
from magray.memory.records import NewRecord, Query
from magray.memory.service import Memory
from magray.timefmt import iso
from tests.fakes import HashEmbedder
from tests.memory.old_store import old_store

HOUR = 3600.0


def make() -> Memory:
    return Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())


def get_json(record_id: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["memory", "get", record_id, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_a_store_from_before_narrow_stats_keeps_its_statistics(magray_home: Path) -> None:
    db = magray_home / "data" / "memory.db"
    start = time.time() - 200 * HOUR
    busy_times = [start + i * HOUR for i in range(150)]
    busy, once, imported, never = old_store(
        db,
        version=6,
        records=[
            ("the busy note", 150, busy_times),
            ("the note read once", 1, [start + 5]),
            ("the imported note", 5, None),  # imports kept counts without a log
            ("the note nobody read", 0, None),
        ],
    )
    conn = sqlite3.connect(db)
    last_imported = conn.execute("SELECT last_access_at FROM records WHERE id = ?", (imported,))
    imported_at = float(last_imported.fetchone()[0])
    conn.close()

    for rid, count, last in [
        (busy, 150, busy_times[-1]),
        (once, 1, start + 5),
        (imported, 5, imported_at),
        (never, 0, None),
    ]:
        shown = get_json(rid)  # the first open migrates the store
        assert (shown["access_count"], shown["last_access_at"]) == (count, iso(last))

    with make() as memory:
        times = memory.backend.access_times()
        num = {rid: memory.backend.resolve(rid).num for rid in (busy, once, imported, never)}
        assert times[num[busy]] == busy_times[:KEEP_FIRST] + busy_times[-KEEP_LAST:]
        assert times[num[once]] == [start + 5]
        assert num[imported] not in times and num[never] not in times
        assert verify(memory).ok
    conn = sqlite3.connect(db)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(records)")}
        assert "access_count" not in columns and "last_access_at" not in columns
        assert conn.execute("SELECT COUNT(*) FROM access_log").fetchone() == (0,)  # folded
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (7,)
    finally:
        conn.close()


def test_the_log_folds_into_a_bounded_history(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_stats, "FOLD_AT", 100)
    with make() as memory:
        added = memory.remember_many([NewRecord(text="busy"), NewRecord(text="quiet")])
        busy, quiet = (memory.backend.resolve(r.id) for r in added)
        nums: dict[int, list[float]] = {busy.num: [], quiet.num: []}
        at = 1_700_000_000.0
        for _ in range(40):  # 2,000 accesses in flushes of 50
            events = []
            for i in range(50):
                num = quiet.num if i == 0 else busy.num
                at += 1
                events.append((num, at))
                nums[num].append(at)
            memory.backend.record_accesses(events)
        memory.backend.store.wait_for_fold()  # type: ignore[attr-defined]
        conn = memory.backend.store.conn  # type: ignore[attr-defined]
        assert conn.execute("SELECT COUNT(*) FROM access_log").fetchone()[0] < 150
        kept = dict(conn.execute("SELECT num, length(times) / 8 FROM access_history"))
        assert kept[busy.num] == KEPT and kept[quiet.num] <= 40
        times = memory.backend.access_times()
        assert times == {n: bounded(ts) for n, ts in nums.items()}
        record = memory.get(busy.record.id)
        assert record.access_count == 1960 and record.last_access_at == nums[busy.num][-1]
        memory.forget(quiet.record.id)  # the history goes with the record
        assert memory.backend.access_times().keys() == {busy.num}
        assert conn.execute("SELECT COUNT(*) FROM access_history").fetchone()[0] == 1
        # A bump racing a delete in another process: the fold drops what it left behind.
        memory.backend.record_accesses([(quiet.num, at + 1)])
        assert memory.backend.access_times().keys() == {busy.num}
        with memory.backend.store.write() as conn:  # type: ignore[attr-defined]
            access_stats.fold(conn)
        assert conn.execute("SELECT num FROM record_stats").fetchall() == [(busy.num,)]
        assert conn.execute("SELECT num FROM access_history").fetchall() == [(busy.num,)]


def test_recalls_show_in_memory_get_json(magray_home: Path) -> None:
    with make() as memory:
        rid = memory.remember(NewRecord(text="the harbour ferry leaves at nine")).id
        for _ in range(3):
            assert memory.recall(Query(text="harbour ferry", k=1))
    shown = get_json(rid)
    assert shown["access_count"] == 3 and isinstance(shown["last_access_at"], str)


@pytest.mark.parametrize("kept", [0, 1, KEEP_FIRST, KEPT - 1, KEPT])
@pytest.mark.parametrize("added", [1, 2, KEEP_LAST, KEPT + 5])
@pytest.mark.parametrize("later", [True, False])
def test_a_fold_keeps_what_bounded_keeps(kept: int, added: int, later: bool) -> None:
    # The fold works on the packed bytes when the new times come after the history; the
    # history it writes is the same as unpacking, bounding and packing again.
    old = [1000.0 + i for i in range(kept)]
    start = 2000.0 if later else 1000.5
    times = [start + 0.25 * i for i in range(added)]
    got = access_stats.unpack(access_stats._appended(access_stats.pack(old), times))
    assert got == bounded([*old, *times])


def test_a_fold_in_short_turns_keeps_every_record_history(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fold (on the store's fold thread) moves a few rows per step and pauses between
    # steps (so that a server's other threads get the interpreter lock); the histories it
    # writes are the same as in one go.
    pauses: list[None] = []
    monkeypatch.setattr(access_stats, "FOLD_AT", 100)
    monkeypatch.setattr(access_stats, "STEP_ROWS", 3)
    monkeypatch.setattr(access_stats, "pause", lambda: pauses.append(None))
    with make() as memory:
        added = memory.remember_many([NewRecord(text=f"note {i}") for i in range(10)])
        nums = [memory.backend.resolve(r.id).num for r in added]
        expected: dict[int, list[float]] = {num: [] for num in nums}
        at = 1_700_000_000.0
        for round_ in range(30):  # 300 accesses, spread unevenly over the records
            events = []
            for i in range(10):
                num = nums[(i * (round_ + 1)) % len(nums)]
                at += 1
                events.append((num, at))
                expected[num].append(at)
            memory.backend.record_accesses(events)
        memory.backend.store.wait_for_fold()  # type: ignore[attr-defined]
        assert len(pauses) > 10
        got = memory.backend.access_times()
        assert got == {n: bounded(ts) for n, ts in expected.items() if ts}
