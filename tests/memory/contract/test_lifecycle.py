"""Contract: what promotion and expiry write (the decisions are the lifecycle's)."""

from __future__ import annotations

from magray.memory.backends import Backend
from magray.memory.backends.base import Expiry, Promotion
from magray.memory.records import Filters, Layer, NewRecord
from tests.memory.contract.conftest import NOW, Insert


def test_live_records_and_access_times(backend: Backend, insert: Insert) -> None:
    a, b, _ = insert(
        [NewRecord("a"), NewRecord("b", layer=Layer.INSIGHTS), NewRecord("c", layer=Layer.ASSETS)]
    )
    backend.record_access([b.num], NOW + 2)
    backend.record_access([b.num, a.num], NOW + 1)
    live = backend.live_records((Layer.INTERACT, Layer.INSIGHTS))
    assert [r.num for r in live] == [a.num, b.num]
    assert backend.live_records(()) == []
    assert backend.access_times() == {a.num: [NOW + 1], b.num: [NOW + 1, NOW + 2]}


def test_promote_moves_scores_logs_and_stores_meta(backend: Backend, insert: Insert) -> None:
    a, b = insert([NewRecord("rise"), NewRecord("stay")])
    actions = backend.promote(
        {a.id: 0.9, b.id: 0.1},
        [Promotion(a.num, a.id, Layer.INSIGHTS, 0.9, ("used a lot", "ünïcode"))],
        now=NOW + 100,
        meta={"promotion_model": "{}"},
    )
    assert actions == ["promote"]
    moved = backend.resolve(a.id).record
    assert moved.layer is Layer.INSIGHTS and moved.layer_since == NOW + 100
    assert moved.updated_at == NOW + 100 and moved.created_at == NOW
    assert moved.promotion_score == 0.9
    assert backend.resolve(b.id).record.promotion_score == 0.1
    assert backend.meta("promotion_model") == "{}"
    (entry,) = backend.lifecycle_log()
    assert (entry.record_id, entry.action, entry.from_layer, entry.to_layer) == (
        a.id,
        "promote",
        Layer.INTERACT,
        Layer.INSIGHTS,
    )
    assert entry.score == 0.9 and entry.reasons == ("used a lot", "ünïcode")
    assert entry.at == NOW + 100


def test_promote_onto_identical_content_merges(backend: Backend, insert: Insert) -> None:
    twin = insert([NewRecord("same", layer=Layer.INSIGHTS, importance=0.3)])[0]
    src = insert([NewRecord("same", importance=0.7, pinned=True)])[0]
    backend.record_access([src.num], NOW + 1)
    backend.record_access([src.num], NOW + 2)
    backend.record_access([twin.num], NOW + 3)
    actions = backend.promote(
        {}, [Promotion(src.num, src.id, Layer.INSIGHTS, 0.8, ("r",))], now=NOW + 10
    )
    assert actions == ["merge"]
    assert backend.count() == 1
    merged = backend.resolve(twin.id).record
    assert merged.access_count == 3 and merged.pinned and merged.importance == 0.7
    assert backend.access_times() == {twin.num: [NOW + 1, NOW + 2, NOW + 3]}
    assert [e.action for e in backend.lifecycle_log()] == ["merge"]
    gone = backend.promote({}, [Promotion(src.num, src.id, Layer.ASSETS, 0.8, ())], now=NOW)
    assert gone == ["gone"] and len(backend.lifecycle_log()) == 1


def test_expire_archives_history_deletes_and_logs(backend: Backend, insert: Insert) -> None:
    a, _ = insert([NewRecord("old", importance=0.4), NewRecord("kept")])
    backend.record_access([a.num], NOW + 1)
    backend.record_access([a.num], NOW + 2)
    assert backend.expire([Expiry(a.num, "too old"), Expiry(999_999, "gone")], now=NOW + 50) == 1
    assert backend.count() == 1 and backend.count(Filters(layers=(Layer.INTERACT,))) == 1
    (archived,) = backend.archived_histories()
    assert archived.record_id == a.id and archived.layer is Layer.INTERACT
    assert archived.access_times == (NOW + 1, NOW + 2)
    assert archived.importance == 0.4 and not archived.pinned
    assert archived.created_at == NOW and archived.archived_at == NOW + 50
    (entry,) = backend.lifecycle_log()
    assert (entry.action, entry.record_id, entry.reasons) == ("expire", a.id, ("too old",))
    assert entry.to_layer is None
    assert backend.expire([], now=NOW) == 0


def test_the_access_history_keeps_the_first_and_last_times(
    backend: Backend, insert: Insert
) -> None:
    from magray.memory.access import KEEP_FIRST, KEEP_LAST

    a, b = insert([NewRecord("busy"), NewRecord("quiet")])
    times = [NOW + i for i in range(1, 151)]
    backend.record_accesses([(a.num, t) for t in times] + [(b.num, NOW + 7)])
    record = backend.resolve(a.id).record
    assert record.access_count == 150 and record.last_access_at == NOW + 150
    kept = backend.access_times()
    assert kept[a.num] == times[:KEEP_FIRST] + times[-KEEP_LAST:]
    assert kept[b.num] == [NOW + 7]
    assert backend.expire([Expiry(a.num, "too old")], now=NOW + 500) == 1
    (archived,) = backend.archived_histories()
    assert list(archived.access_times) == times[:KEEP_FIRST] + times[-KEEP_LAST:]


def test_a_merge_keeps_the_history_bounded(backend: Backend, insert: Insert) -> None:
    from magray.memory.access import KEPT

    twin = insert([NewRecord("same", layer=Layer.INSIGHTS)])[0]
    src = insert([NewRecord("same")])[0]
    backend.record_accesses([(src.num, NOW + i) for i in range(1, 51)])
    backend.record_accesses([(twin.num, NOW + 100 + i) for i in range(50)])
    backend.promote({}, [Promotion(src.num, src.id, Layer.INSIGHTS, 0.8, ())], now=NOW + 200)
    merged = backend.resolve(twin.id).record
    assert merged.access_count == 100 and merged.last_access_at == NOW + 149
    times = backend.access_times()[twin.num]
    assert len(times) == KEPT and times[0] == NOW + 1 and times[-1] == NOW + 149
