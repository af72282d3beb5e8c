"""The fast recall path: buffered access statistics, reads by label, the vector pool."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magray.config import load_settings
from magray.memory.access import AccessBuffer
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.search import recall as recall_path
from magray.memory.search.vectors import vector_pool
from magray.memory.service import Memory
from tests.fakes import HashEmbedder


def make(**overrides: object) -> Memory:
    return Memory(load_settings(overrides), embedder=HashEmbedder())


def stored_count(magray_home: Path, record_id: str) -> int:
    conn = sqlite3.connect(magray_home / "data" / "memory.db")
    try:
        row = conn.execute(
            "SELECT s.access_count FROM records r JOIN record_stats s ON s.num = r.num"
            " WHERE r.id = ?",
            (record_id,),
        )
        return int(row.fetchone()[0])
    finally:
        conn.close()


def test_recall_buffers_access_stats_and_close_writes_them(magray_home: Path) -> None:
    memory = make()
    rid = memory.remember(NewRecord(text="the harbour ferry leaves at nine")).id
    hits = memory.recall(Query(text="harbour ferry", k=1))
    assert [h.record.id for h in hits] == [rid]
    memory.close()
    assert stored_count(magray_home, rid) == 1


def test_using_the_store_writes_pending_access_stats_first(magray_home: Path) -> None:
    with make() as memory:
        rid = memory.remember(NewRecord(text="the harbour ferry leaves at nine")).id
        for _ in range(3):
            memory.recall(Query(text="harbour ferry", k=1))
        assert memory.get(rid).access_count == 3  # get goes through .backend: flushed
        assert len(memory.backend.access_times()[memory.backend.resolve(rid).num]) == 3


def test_access_buffer_writes_from_its_thread_when_full() -> None:
    written: list[list[tuple[int, float]]] = []
    done = threading.Event()

    def write(events: Sequence[tuple[int, float]]) -> None:
        written.append(list(events))
        done.set()

    buffer = AccessBuffer(write, count=4, seconds=3600.0)
    buffer.add([1, 2], 10.0)
    assert not written  # below the count and young: nothing written yet
    buffer.add([3, 4], 11.0)
    assert done.wait(30)  # no timing assertion: only that the thread wrote eventually
    assert written == [[(1, 10.0), (2, 10.0), (3, 11.0), (4, 11.0)]]
    buffer.add([5], 12.0)
    buffer.close()
    assert written[-1] == [(5, 12.0)] and not buffer


def test_access_buffer_swallows_write_errors() -> None:
    def fail(events: Sequence[tuple[int, float]]) -> None:
        raise RuntimeError("store busy")

    buffer = AccessBuffer(fail, count=10**6, seconds=3600.0)
    buffer.add([1], 1.0)
    buffer.close()  # logged, not raised; the events are dropped like a skipped write
    assert not buffer


def test_access_to_a_record_forgotten_meanwhile_is_not_logged(magray_home: Path) -> None:
    with make() as memory:
        rid = memory.remember(NewRecord(text="the harbour ferry leaves at nine")).id
        memory.recall(Query(text="harbour ferry", k=1))
        memory._backend.delete([memory._backend.resolve(rid).num])  # bypass the flush
        memory.flush_access()
        assert memory.backend.access_times() == {}


def test_reads_by_label_do_not_walk_a_layer(magray_home: Path) -> None:
    with make() as memory:
        memory.remember(NewRecord(text="one note", layer=Layer.ASSETS))
        conn = memory.backend.store.conn  # type: ignore[attr-defined]
        from magray.memory.backends.sqlite.rows import RECORD_COLUMNS, STATS_JOIN, filter_sql

        cond, params = filter_sql(Filters(layers=(Layer.ASSETS,)))
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT {RECORD_COLUMNS} FROM records r NOT INDEXED{STATS_JOIN}"
            f" WHERE r.num IN (?, ?) AND {cond}",
            [1, 2, *params],
        ).fetchall()
        assert any("INTEGER PRIMARY KEY" in str(row[-1]) for row in plan), plan
        count_plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM records WHERE layer = ?"
            " AND embedding_model = ? AND vector IS NOT NULL",
            ("assets", "m"),
        ).fetchall()
        assert any("records_layer_vectors" in str(row[-1]) for row in count_plan), count_plan


def test_vector_pool_is_the_best_over_all_layers_when_one_layer_holds_them(
    magray_home: Path,
) -> None:
    """Layers are first asked for their share; a layer holding more of the best is asked
    again, so the pool equals the exact best over every layer."""
    with make(**{"search.weight_assets": 1.5}) as memory:  # not a plain order: pool path
        texts = [f"alpha beta gamma note {i}" for i in range(60)]
        memory.remember_many([NewRecord(text=t, layer=Layer.ASSETS) for t in texts])
        others = [f"zeta {i} unrelated words here" for i in range(30)]
        memory.remember_many([NewRecord(text=t, layer=Layer.INTERACT) for t in others])
        embedder = memory.embedder
        qvec = memory.embed_query("alpha beta gamma note")
        pool = vector_pool(memory.backend, qvec, tuple(Layer), 40, Filters())
        everything = [*texts, *others]
        vectors = embedder.embed_documents(everything)
        want = np.sort(vectors @ qvec)[::-1][:40]  # compared by score: ties are common
        got = np.asarray([sim for _, sim, _ in pool])
        assert len(pool) == 40 and np.allclose(got, want, atol=1e-3)
        assert sum(layer is Layer.ASSETS for _, _, layer in pool) > 20  # beyond a share
        hits = memory.recall(Query(text="alpha beta gamma note", k=5, mode=SearchMode.HYBRID))
        assert all(h.record.layer is Layer.ASSETS for h in hits)


def deploy_notes(lunch_tail: str) -> Memory:
    """A store of 60 deploy notes and 20 lunch notes over the three layers."""
    memory = make()
    texts = [f"deploy {'staging ' * (i % 3)}server {i} note" for i in range(60)]
    texts += [f"lunch menu {i}{lunch_tail}" for i in range(20)]
    layers = list(Layer)
    memory.remember_many([NewRecord(text=t, layer=layers[i % 3]) for i, t in enumerate(texts)])
    return memory


def test_plain_fusion_reads_no_record_and_ranks_as_the_full_path(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = deploy_notes("")
    backend = memory.backend
    calls: list[str] = []
    for name in ("keyword_search", "candidates"):
        original = getattr(backend, name)

        def spy(*args: object, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(backend, name, spy)
    queries = [
        Query(text=text, k=8, mode=mode, explain=True)
        for mode in (SearchMode.HYBRID, SearchMode.KEYWORD)
        for text in ("deploy staging server", "staging", "lunch 7")
    ]
    plain = [memory.recall(q) for q in queries]
    assert calls == []
    # The same queries through the full path: keyword hits with layer and time, candidates.
    monkeypatch.setattr(recall_path, "one_weight", lambda params: None)
    full = [memory.recall(q) for q in queries]
    assert calls == ["keyword_search"] * len(queries)
    for a, b in zip(plain, full, strict=True):
        assert a and [(h.record.id, h.score) for h in a] == [(h.record.id, h.score) for h in b]
    memory.close()


def test_hybrid_keyword_side_beside_the_vector_search_ranks_as_the_sequential_path(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = deploy_notes(" at the harbour")
    threads: list[str] = []
    workers: set[threading.Thread] = set()
    backend = memory.backend
    for name in ("keyword_search", "keyword_ranking"):
        original = getattr(backend, name)

        def spy(*args: object, _original: Any = original) -> Any:
            threads.append(threading.current_thread().name)
            workers.add(threading.current_thread())
            return _original(*args)

        monkeypatch.setattr(backend, name, spy)
    queries = [
        Query(text=text, k=8, mode=SearchMode.HYBRID, explain=explain, filters=filters)
        for text in ("deploy staging server", "harbour lunch", "server 7 note")
        for explain in (False, True)
        for filters in (Filters(), Filters(layers=(Layer.ASSETS,)))
    ]

    def ranked(hits: list[Any]) -> list[tuple[str, float, Any]]:
        return [(h.record.id, h.score, h.explanation) for h in hits]

    beside = [ranked(memory.recall(q)) for q in queries]
    assert threads and all(name.startswith("magray-keywords") for name in threads)
    threads.clear()
    monkeypatch.setattr(backend, "concurrent_reads", lambda: False)
    sequential = [ranked(memory.recall(q)) for q in queries]
    assert threads == [threading.current_thread().name] * len(queries)
    assert all(beside) and beside == sequential
    memory.close()  # the worker thread ends with the Memory
    assert len(workers) == 2 and not any(
        t.is_alive() for t in workers - {threading.current_thread()}
    )


def test_a_failing_keyword_side_fails_the_hybrid_recall(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make() as memory:
        memory.remember(NewRecord(text="the harbour ferry leaves at nine"))

        def broken(*args: object) -> Any:
            raise sqlite3.OperationalError("disk I/O error")

        monkeypatch.setattr(memory.backend, "keyword_ranking", broken)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
            memory.recall(Query(text="harbour ferry", k=1, mode=SearchMode.HYBRID))
        # Vector mode never asks the keyword side.
        assert memory.recall(Query(text="harbour ferry", k=1, mode=SearchMode.VECTOR))


def test_recall_explains_only_when_asked(magray_home: Path) -> None:
    from magray.memory.search.fusion import UNEXPLAINED

    with make() as memory:
        memory.remember_many([NewRecord(text=f"harbour ferry {i}") for i in range(5)])
        for mode in SearchMode:
            plain = memory.recall(Query(text="harbour ferry", k=3, mode=mode))
            told = memory.recall(Query(text="harbour ferry", k=3, mode=mode, explain=True))
            assert [(h.record.id, h.score) for h in plain] == [(h.record.id, h.score) for h in told]
            assert all(h.explanation is None for h in plain)
            assert all(h.explanation not in (None, UNEXPLAINED) for h in told)


def test_a_row_reads_as_the_record_field_by_field() -> None:
    """Rows become records positionally (the hot path): every field lands in its place."""
    from magray.memory.backends.sqlite.rows import row_to_record
    from magray.memory.records import Record, Source

    values: dict[str, Any] = {
        "num": 7,
        "id": "abc123",
        "text": "the ferry",
        "layer": "insights",
        "kind": "fact",
        "tags": '["a", "b"]',
        "project": "proj",
        "session": "s1",
        "source_uri": "/notes/a.md",
        "source_start": 1,
        "source_end": 2,
        "source_line_start": 3,
        "source_line_end": 4,
        "created_at": 10.0,
        "updated_at": 11.0,
        "layer_since": 12.0,
        "last_access_at": 13.0,
        "access_count": 5,
        "importance": 0.25,
        "pinned": 1,
        "promotion_score": 0.75,
        "content_hash": "hash",
        "embedding_model": "model",
        "occurred_at": 9.0,
    }
    stored = row_to_record(tuple(values.values()))
    assert stored.num == 7
    assert stored.record == Record(
        id="abc123",
        text="the ferry",
        layer=Layer.INSIGHTS,
        kind="fact",
        tags=("a", "b"),
        project="proj",
        session="s1",
        source=Source("/notes/a.md", 1, 2, 3, 4),
        created_at=10.0,
        updated_at=11.0,
        layer_since=12.0,
        last_access_at=13.0,
        access_count=5,
        importance=0.25,
        pinned=True,
        promotion_score=0.75,
        content_hash="hash",
        embedding_model="model",
        occurred_at=9.0,
    )


def test_a_stream_of_accesses_wakes_the_writer_once_per_batch() -> None:
    """The first access of a batch wakes a sleeping writer thread; one that has just written
    (or waits for an access to come due) is not woken again until the batch is full."""

    class CountingEvent(threading.Event):
        sets = 0

        def set(self) -> None:
            CountingEvent.sets += 1
            super().set()

    written: list[list[tuple[int, float]]] = []
    batches = [threading.Event(), threading.Event()]

    def write(events: Sequence[tuple[int, float]]) -> None:
        written.append(list(events))
        batches[len(written) - 1].set()

    buffer = AccessBuffer(write, count=4, seconds=3600.0)
    buffer._wake = CountingEvent()
    buffer.add([1], 10.0)  # starts the thread and wakes it
    buffer.add([2, 3, 4], 11.0)  # full
    assert batches[0].wait(30)
    assert CountingEvent.sets == 2
    buffer.add([5], 12.0)  # the writer lingers after a batch: not woken
    assert CountingEvent.sets == 2
    buffer.add([6, 7, 8], 13.0)  # full again
    assert batches[1].wait(30)
    assert CountingEvent.sets == 3
    buffer.close()
    assert written == [
        [(1, 10.0), (2, 11.0), (3, 11.0), (4, 11.0)],
        [(5, 12.0), (6, 13.0), (7, 13.0), (8, 13.0)],
    ]


def test_no_filters_read_as_the_always_true_condition() -> None:
    from magray.memory.backends.sqlite.rows import filter_sql

    assert filter_sql(Filters()) == ("1", [])
    assert filter_sql(Filters(exclude_kinds=("exchange",))) == (
        "1 AND r.kind NOT IN (?)",
        ["exchange"],
    )
    assert filter_sql(Filters(layers=(Layer.ASSETS,)), "x") == ("1 AND x.layer IN (?)", ["assets"])
