"""Promotion and expiry against a real store."""

from __future__ import annotations

import json

import pytest

from magray.config import load_settings
from magray.memory.lifecycle import run as lifecycle
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

HOUR = 3600.0


def make(**overrides: object) -> Memory:
    overrides.setdefault("memory.auto_lifecycle", False)
    return Memory(load_settings(overrides), embedder=HashEmbedder())


def access(memory: Memory, record_id: str, times: list[float]) -> None:
    num = memory.backend.resolve(record_id).num
    memory.backend.record_accesses([(num, t) for t in sorted(times)])


@pytest.fixture
def memory() -> Memory:
    return make()


def test_frequently_used_interact_record_is_promoted(memory: Memory) -> None:
    hot = memory.remember(NewRecord(text="the deploy key lives in vault path ops/deploy"))
    cold = memory.remember(NewRecord(text="lunch was pasta today"))
    created = memory.get(hot.id).created_at
    access(memory, hot.id, [created + i * 600 for i in range(1, 9)])
    now = created + 2 * HOUR

    dry = lifecycle.promote(memory, dry_run=True, now=now)
    assert [d.record_id for d in dry.promoted] == [hot.id]
    assert memory.get(hot.id).layer is Layer.INTERACT  # dry run changed nothing
    assert any("accessed" in r for r in dry.promoted[0].reasons)

    lifecycle.promote(memory, now=now)
    promoted = memory.get(hot.id)
    assert promoted.layer is Layer.INSIGHTS
    assert promoted.layer_since == now
    assert memory.get(cold.id).layer is Layer.INTERACT
    hits = memory.recall(
        Query(
            text="deploy key vault",
            mode=SearchMode.VECTOR,
            filters=Filters(layers=(Layer.INSIGHTS,)),
        )
    )
    assert hits and hits[0].record.id == hot.id
    log = [(e.action, e.to_layer) for e in memory.backend.lifecycle_log()]
    assert log == [("promote", Layer.INSIGHTS)]


def test_pinned_interact_record_goes_up_at_once(memory: Memory) -> None:
    pinned = memory.remember(NewRecord(text="never forget the on-call number", pinned=True))
    report = lifecycle.promote(memory, now=memory.get(pinned.id).created_at + 60)
    assert [d.record_id for d in report.promoted] == [pinned.id]
    assert memory.get(pinned.id).layer is Layer.INSIGHTS


def test_promotion_onto_identical_content_merges(memory: Memory) -> None:
    a = memory.remember(NewRecord(text="same words", layer=Layer.INSIGHTS))
    b = memory.remember(NewRecord(text="same words", pinned=True))
    lifecycle.promote(memory, now=memory.get(b.id).created_at + 60)
    assert memory.backend.count() == 1
    merged = memory.get(a.id)
    assert merged.pinned
    assert [e.action for e in memory.backend.lifecycle_log()] == ["merge"]


def test_expire_removes_old_unpinned_records_and_archives_history(memory: Memory) -> None:
    old = memory.remember(NewRecord(text="temporary scratch note"))
    keep = memory.remember(NewRecord(text="pinned scratch note", pinned=True))
    asset = memory.remember(NewRecord(text="a permanent asset", layer=Layer.ASSETS))
    created = memory.get(old.id).created_at
    access(memory, old.id, [created + 60])
    now = created + 25 * HOUR

    dry = lifecycle.expire(memory, dry_run=True, now=now)
    assert [e.record_id for e in dry.expired] == [old.id]
    assert memory.backend.count() == 3

    lifecycle.expire(memory, now=now)
    remaining = {r.id for r in memory.list_records(limit=10)}
    assert remaining == {keep.id, asset.id}
    archived = memory.backend.archived_histories()
    assert archived[0].record_id == old.id and archived[0].access_times == (created + 60,)
    assert memory.recall(Query(text="temporary scratch", mode=SearchMode.KEYWORD)) == [] or all(
        h.record.id != old.id for h in memory.recall(Query(text="temporary scratch"))
    )


def test_learned_scorer_is_trained_from_history_and_stored(memory: Memory) -> None:
    base = None
    for i in range(40):
        important = i % 2 == 0
        r = memory.remember(
            NewRecord(
                text=f"fact number {i} about topic {i * 7}", importance=0.8 if important else 0.1
            )
        )
        created = memory.get(r.id).created_at
        base = base or created
        if important:
            access(memory, r.id, [created + k * 8 * HOUR for k in range(1, 8)])
    assert base is not None
    now = base + 5 * 24 * HOUR
    report = lifecycle.promote(memory, dry_run=True, now=now)
    assert report.model["source"] == "trained"
    assert any(d.model_score is not None for d in report.promoted + report.kept)
    lifecycle.promote(memory, now=now)
    stored = json.loads(memory.backend.meta(lifecycle.META_MODEL) or "{}")
    assert stored["n_samples"] >= 50
    again = lifecycle.promote(memory, dry_run=True, now=now + 60)
    assert again.model["source"] == "stored"


def test_rules_only_until_enough_data(memory: Memory) -> None:
    memory.remember(NewRecord(text="just one record"))
    report = lifecycle.promote(memory, dry_run=True)
    assert report.model["source"] == "rules only"
    assert any("rules only" in r for r in report.kept[0].reasons)


def test_automatic_lifecycle_runs_on_write_and_is_rate_limited() -> None:
    memory = make(**{"memory.auto_lifecycle": True, "memory.lifecycle_interval_minutes": 60})
    memory.remember(NewRecord(text="first write triggers a lifecycle run"))
    first = memory.backend.meta(lifecycle.META_LAST_RUN)
    assert first is not None
    memory.remember(NewRecord(text="second write within the hour does not"))
    assert memory.backend.meta(lifecycle.META_LAST_RUN) == first
