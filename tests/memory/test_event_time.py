"""Event time: when a memory happened, kept apart from when it was stored."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import UsageError
from magray.memory.lifecycle.expire import DEFAULT_TTLS, HOUR, expire_decisions, ttl_start
from magray.memory.records import Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder
from tests.memory.old_store import old_store
from tests.memory.test_promote import NOW, make_record

MARCH = 1_677_628_800.0  # 2023-03-01T00:00:00Z


def make(**overrides: object) -> Memory:
    return Memory(load_settings(overrides), embedder=HashEmbedder())


def test_a_record_keeps_its_event_time_apart_from_its_store_time() -> None:
    with make() as memory:
        before = time.time()
        item = NewRecord(text="flew to Lisbon", layer=Layer.ASSETS, occurred_at=MARCH)
        result = memory.remember(item)
        record = memory.get(result.id)
        assert record.occurred_at == MARCH and record.event_at == MARCH
        assert record.created_at >= before and record.layer_since == record.created_at
        plain = memory.get(memory.remember(NewRecord(text="no time given")).id)
        assert plain.occurred_at is None and plain.event_at == plain.created_at


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1e13, 1e12])
def test_an_event_time_outside_the_calendar_is_refused(bad: float) -> None:
    with make() as memory, pytest.raises(UsageError, match="occurred_at"):
        memory.remember(NewRecord(text="when?", occurred_at=bad))


def test_ttl_counts_from_the_event_until_a_promotion_restarts_it() -> None:
    stored_now = replace(make_record("old", created_at=NOW - HOUR), occurred_at=NOW - 48 * HOUR)
    fresh_event = replace(make_record("new", created_at=NOW - HOUR), occurred_at=NOW - 2 * HOUR)
    promoted = replace(
        make_record("moved", created_at=NOW - 30 * HOUR, layer_since=NOW - HOUR),
        occurred_at=NOW - 72 * HOUR,
    )
    assert ttl_start(stored_now) == NOW - 48 * HOUR and ttl_start(promoted) == NOW - HOUR
    decisions = expire_decisions([stored_now, fresh_event, promoted], NOW, ttls=DEFAULT_TTLS)
    assert [d.record_id for d in decisions] == ["old"]
    assert decisions[0].age_hours == 48.0


def test_a_back_filled_memory_in_interact_expires_at_the_next_lifecycle_run() -> None:
    with make(**{"memory.lifecycle_interval_minutes": 0.0}) as memory:
        memory.remember(NewRecord(text="said in March", occurred_at=MARCH))
        month_ago = time.time() - 30 * 86400.0  # within the 90 days of Insights
        memory.remember(NewRecord(text="a month ago", layer=Layer.INSIGHTS, occurred_at=month_ago))
        memory.remember(NewRecord(text="said just now"))
        texts = sorted(r.text for r in memory.list_records())
        assert texts == ["a month ago", "said just now"]


def test_recency_boost_counts_from_the_event_time() -> None:
    with make(**{"search.recency_half_life_days": 30.0}) as memory:
        old = NewRecord(text="harbour boat trip plan", layer=Layer.ASSETS, occurred_at=MARCH)
        memory.remember(old)
        memory.remember(NewRecord(text="harbour boat trip plan today"))
        for mode in (SearchMode.KEYWORD, SearchMode.HYBRID, SearchMode.VECTOR):
            hits = memory.recall(Query(text="harbour boat trip", mode=mode, explain=True))
            factors = {h.record.occurred_at is None: h.explanation.recency_factor for h in hits}
            assert factors[True] > 1.2 and factors[False] < 1.01, mode


def test_a_store_from_before_event_times_reads_store_times(magray_home: Path) -> None:
    db = magray_home / "data" / "memory.db"
    rid = old_store(db, version=2, records=[("an old note", 0, None)])[0]
    with make() as memory:  # migrates the store: the column comes back empty
        record = memory.get(rid)
        assert record.occurred_at is None and record.event_at == record.created_at
        again = memory.remember(NewRecord(text="new", layer=Layer.ASSETS, occurred_at=MARCH))
        assert memory.get(again.id).occurred_at == MARCH
