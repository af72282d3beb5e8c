"""Contract: writing, reading, filtering and counting records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from magray.errors import NotFoundError, UsageError
from magray.hashing import content_hash
from magray.memory.backends import Backend
from magray.memory.records import Filters, Layer, NewRecord, Record
from tests.fakes import HashEmbedder
from tests.memory.contract.conftest import NOW, Insert, vector


def exact(text: str, id_: str, **fields: object) -> Record:
    values: dict[str, object] = {
        "id": id_,
        "text": text,
        "layer": Layer.ASSETS,
        "kind": "note",
        "tags": (),
        "project": None,
        "session": None,
        "source": None,
        "created_at": NOW,
        "updated_at": NOW,
        "layer_since": NOW,
        "last_access_at": None,
        "access_count": 0,
        "importance": 0.5,
        "pinned": False,
        "promotion_score": None,
        "content_hash": content_hash(text),
        "embedding_model": None,
    }
    values.update(fields)
    return Record(**values)  # type: ignore[arg-type]


def test_insert_returns_one_result_per_item_and_sets_the_model(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    assert backend.embedding_model() == (None, None)
    results = insert([NewRecord("alpha"), NewRecord("beta", layer=Layer.ASSETS)])
    assert [r.created for r in results] == [True, True]
    assert [r.layer for r in results] == [Layer.INTERACT, Layer.ASSETS]
    assert len({r.num for r in results}) == 2 and all(r.num > 0 for r in results)
    assert backend.embedding_model() == (embedder.model_id, embedder.dim)
    record = backend.resolve(results[0].id).record
    assert (record.created_at, record.updated_at, record.layer_since) == (NOW, NOW, NOW)
    assert record.access_count == 0 and record.embedding_model == embedder.model_id
    assert record.content_hash == content_hash("alpha")
    assert backend.count() == 2


def test_dedup_per_layer_and_project_bumps_and_merges(backend: Backend, insert: Insert) -> None:
    first = insert([NewRecord("same", tags=("a", "b"), project="p", importance=0.2)])[0]
    again = insert(
        [NewRecord("same", tags=("c", "a"), project="p", importance=0.9, pinned=True)],
        now=NOW + 10,
    )[0]
    assert not again.created and again.id == first.id and again.num == first.num
    record = backend.resolve(first.id).record
    assert record.tags == ("a", "b", "c")
    assert record.access_count == 1 and record.last_access_at == NOW + 10
    assert record.updated_at == NOW + 10 and record.created_at == NOW
    assert record.importance == 0.9 and record.pinned
    assert backend.access_times() == {first.num: [NOW + 10]}
    # another project, another layer: new records
    other = insert([NewRecord("same", project="q"), NewRecord("same", layer=Layer.ASSETS)])
    assert all(r.created for r in other)
    assert backend.count() == 3


def test_dedup_inside_one_batch(backend: Backend, insert: Insert) -> None:
    results = insert([NewRecord("twice"), NewRecord("twice")])
    assert [r.created for r in results] == [True, False]
    assert results[0].num == results[1].num and backend.count() == 1


def test_delete_ignores_missing_labels(backend: Backend, insert: Insert) -> None:
    a, b = insert([NewRecord("one"), NewRecord("two")])
    backend.record_access([a.num], NOW + 1)
    assert backend.delete([a.num, 999_999]) == 1
    assert backend.count() == 1 and a.num not in backend.access_times()
    with pytest.raises(NotFoundError):
        backend.resolve(a.id)
    assert backend.resolve(b.id).record.text == "two"


def test_resolve_exact_prefix_ambiguous_missing(backend: Backend, embedder: HashEmbedder) -> None:
    rows = [
        (exact("first", "abcd000000000000"), vector(embedder, "first")),
        (exact("second", "abcd100000000000"), vector(embedder, "second")),
        (exact("third", "wxyz000000000000"), vector(embedder, "third")),
    ]
    assert backend.insert_exact(rows, model_id=embedder.model_id, dim=embedder.dim) == (3, 0)
    assert backend.resolve("ABCD000000000000").record.text == "first"
    assert backend.resolve(" wxyz ").record.text == "third"
    assert backend.resolve("abcd1").record.text == "second"
    with pytest.raises(UsageError, match="ambiguous"):
        backend.resolve("abcd")
    with pytest.raises(UsageError, match="at least 4"):
        backend.resolve("abc")
    with pytest.raises(NotFoundError):
        backend.resolve("zzzz")


@pytest.fixture
def varied(backend: Backend, insert: Insert) -> dict[str, int]:
    """Six records across layers, kinds, projects, sessions, tags and times."""
    specs = [
        (NewRecord("a1", Layer.INTERACT, "note", ("x",), "p", "s1"), NOW),
        (NewRecord("a2", Layer.INTERACT, "chat", ("x", "y"), "p", "s2"), NOW + 10),
        (NewRecord("a3", Layer.INSIGHTS, "note", ("y",), "q", "s1"), NOW + 20),
        (NewRecord("a4", Layer.ASSETS, "code", ("x", "y", "z"), None, None), NOW + 30),
        (NewRecord("a5", Layer.ASSETS, "note", (), "p", None), NOW + 40),
        (NewRecord("a6", Layer.INSIGHTS, "chat", ("z",), None, "s2"), NOW + 50),
    ]
    return {item.text: insert([item], now=at)[0].num for item, at in specs}


CASES = [
    (Filters(), {"a1", "a2", "a3", "a4", "a5", "a6"}),
    (Filters(layers=(Layer.ASSETS,)), {"a4", "a5"}),
    (Filters(layers=(Layer.INTERACT, Layer.INSIGHTS)), {"a1", "a2", "a3", "a6"}),
    (Filters(tags=("x",)), {"a1", "a2", "a4"}),
    (Filters(tags=("x", "y")), {"a2", "a4"}),
    (Filters(tags=("y", "x", "z")), {"a4"}),
    (Filters(kind="note"), {"a1", "a3", "a5"}),
    (Filters(exclude_kinds=("chat", "code")), {"a1", "a3", "a5"}),
    (Filters(project="p"), {"a1", "a2", "a5"}),
    (Filters(session="s2"), {"a2", "a6"}),
    (Filters(created_after=NOW + 20), {"a3", "a4", "a5", "a6"}),
    (Filters(created_before=NOW + 20), {"a1", "a2"}),
    (Filters(created_after=NOW + 10, created_before=NOW + 40), {"a2", "a3", "a4"}),
    (Filters(layers=(Layer.ASSETS,), tags=("x",), kind="code"), {"a4"}),
]


@pytest.mark.parametrize(("filters", "expected"), CASES)
def test_filters_mean_the_same_in_every_read(
    backend: Backend, varied: dict[str, int], filters: Filters, expected: set[str]
) -> None:
    labels = {varied[t] for t in expected}
    assert backend.count(filters) == len(expected)
    assert {r.record.text for r in backend.list_records(filters, limit=100)} == expected
    assert {r.record.text for r in backend.iter_records(filters, batch=2)} == expected
    assert set(backend.fetch(varied.values(), filters)) == labels
    assert set(backend.candidates(varied.values(), filters)) == labels


def test_list_is_newest_first_with_limit_and_offset(
    backend: Backend, varied: dict[str, int]
) -> None:
    texts = [r.record.text for r in backend.list_records(Filters(), limit=10)]
    assert texts == ["a6", "a5", "a4", "a3", "a2", "a1"]
    page = backend.list_records(Filters(), limit=2, offset=3)
    assert [r.record.text for r in page] == ["a3", "a2"]


def test_iter_records_goes_in_label_order_in_batches(
    backend: Backend, varied: dict[str, int]
) -> None:
    nums = [r.num for r in backend.iter_records(batch=4)]
    assert nums == sorted(varied.values())


def test_fetch_and_candidates_skip_missing_labels(backend: Backend, varied: dict[str, int]) -> None:
    wanted = [varied["a3"], 10_000_000, varied["a1"], varied["a3"]]
    rows = backend.fetch(wanted)
    assert set(rows) == {varied["a1"], varied["a3"]}
    assert rows[varied["a3"]].record.text == "a3"
    cands = backend.candidates(wanted, Filters())
    assert cands[varied["a3"]].layer is Layer.INSIGHTS
    assert cands[varied["a3"]].created_at == NOW + 20
    assert backend.fetch([]) == {} and backend.candidates([], Filters()) == {}


def test_meta_round_trips(backend: Backend) -> None:
    assert backend.meta("missing") is None
    backend.set_meta("k", "v1")
    backend.set_meta("k", "v2 ünïcode")
    assert backend.meta("k") == "v2 ünïcode"


def test_record_accesses_writes_many_times_at_once(backend: Backend, insert: Insert) -> None:
    a, b = insert([NewRecord("one"), NewRecord("two")])
    backend.record_accesses([(a.num, NOW + 5), (b.num, NOW + 5), (a.num, NOW + 6)])
    backend.record_accesses([])
    record = backend.resolve(a.id).record
    assert record.access_count == 2 and record.last_access_at == NOW + 6
    assert backend.access_times() == {a.num: [NOW + 5, NOW + 6], b.num: [NOW + 5]}


def test_record_access_counts_and_logs(backend: Backend, insert: Insert) -> None:
    a, b = insert([NewRecord("one"), NewRecord("two")])
    backend.record_access([a.num, b.num], NOW + 5)
    backend.record_access([a.num], NOW + 6)
    backend.record_access([], NOW + 7)
    record = backend.resolve(a.id).record
    assert record.access_count == 2 and record.last_access_at == NOW + 6
    assert backend.access_times() == {a.num: [NOW + 5, NOW + 6], b.num: [NOW + 5]}


def test_vectors_and_layer_stats(backend: Backend, insert: Insert, embedder: HashEmbedder) -> None:
    a, b = insert([NewRecord("héllo", pinned=True), NewRecord("world", layer=Layer.ASSETS)])
    found = backend.vectors([a.num, b.num, 12345])
    assert set(found) == {a.num, b.num}
    want = vector(embedder, "héllo")
    # a SQLite store with an f16 (the default for a new one) or i8 index keeps float16
    half = getattr(backend, "vector_dtype", "f32") in ("f16", "i8")
    if half:
        want = np.frombuffer(want, "<f4").astype("<f2").astype("<f4").tobytes()
    assert found[a.num] == (embedder.model_id, want)
    stats = backend.layer_stats()
    assert set(stats) == set(Layer)
    assert stats[Layer.INTERACT].records == 1 and stats[Layer.INTERACT].pinned == 1
    assert stats[Layer.INTERACT].text_bytes == len("héllo".encode())
    assert stats[Layer.INTERACT].vector_bytes == (
        2 * embedder.dim + 1 if half else 4 * embedder.dim
    )
    assert stats[Layer.INSIGHTS].records == 0
    assert backend.size_bytes() > 0 and backend.location


def test_insert_exact_keeps_everything_and_skips_duplicates(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    taken = insert([NewRecord("taken", layer=Layer.ASSETS)])[0]
    record = exact(
        "kept",
        "kept000000000000",
        tags=("t1", "t2"),
        project="p",
        session="s",
        created_at=NOW - 100,
        updated_at=NOW - 50,
        layer_since=NOW - 60,
        last_access_at=NOW - 10,
        access_count=7,
        importance=0.8,
        pinned=True,
        promotion_score=0.4,
    )
    rows = [
        (record, vector(embedder, "kept")),
        (exact("other text", taken.id), vector(embedder, "x")),  # id taken
        (exact("taken", "newid00000000000"), vector(embedder, "taken")),  # same content
    ]
    assert backend.insert_exact(rows, model_id=embedder.model_id, dim=embedder.dim) == (1, 2)
    stored = backend.resolve("kept000000000000").record
    assert stored == dataclasses.replace(record, embedding_model=embedder.model_id)
    assert backend.is_duplicate("kept000000000000", Layer.INSIGHTS, "", "h")
    assert backend.is_duplicate("nope000000000000", Layer.ASSETS, "p", record.content_hash)
    assert not backend.is_duplicate("nope000000000000", Layer.INSIGHTS, "p", record.content_hash)
    assert backend.count(Filters(tags=("t2",))) == 1
