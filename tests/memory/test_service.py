"""The Memory facade on a real SQLite store, with the hashing embedder as a seam."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import DimensionMismatchError, NotFoundError, StoreLockedError, UsageError
from magray.memory.maintenance import reindex, verify
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

DOCS = [
    ("The staging database listens on port 5433", Layer.INSIGHTS, ("infra",)),
    ("Deploys run every Tuesday after the standup", Layer.INTERACT, ("process",)),
    ("Use ruff and mypy before every commit", Layer.ASSETS, ("style",)),
    ("Кошка спит на диване весь день", Layer.INTERACT, ("ru",)),
    ("Production database backups are taken nightly", Layer.ASSETS, ("infra",)),
]


def make(embedder: HashEmbedder | None = None, **overrides: object) -> Memory:
    return Memory(load_settings(overrides), embedder=embedder or HashEmbedder())


@pytest.fixture
def memory() -> Memory:
    mem = make()
    for text, layer, tags in DOCS:
        mem.remember(NewRecord(text=text, layer=layer, tags=tags, project="demo"))
    return mem


def test_remember_dedups_same_content_in_same_layer_and_project(memory: Memory) -> None:
    again = memory.remember(NewRecord(text=DOCS[0][0], layer=Layer.INSIGHTS, project="demo"))
    assert again.created is False
    assert memory.get(again.id).access_count == 1
    other_layer = memory.remember(NewRecord(text=DOCS[0][0], layer=Layer.ASSETS, project="demo"))
    assert other_layer.created is True
    assert memory.backend.count() == len(DOCS) + 1


@pytest.mark.parametrize("mode", list(SearchMode))
def test_recall_finds_the_matching_record_in_every_mode(memory: Memory, mode: SearchMode) -> None:
    hits = memory.recall(Query(text="database port", k=3, mode=mode))
    assert hits
    assert "port 5433" in hits[0].record.text


def test_recall_tokenizes_cyrillic(memory: Memory) -> None:
    hits = memory.recall(Query(text="кошка", k=3, mode=SearchMode.KEYWORD))
    assert hits and hits[0].record.text.startswith("Кошка")


def test_filters_restrict_hits(memory: Memory) -> None:
    hits = memory.recall(
        Query(text="database", k=10, filters=Filters(layers=(Layer.ASSETS,), tags=("infra",)))
    )
    assert [h.record.text for h in hits] == [DOCS[4][0]]
    none = memory.recall(Query(text="database", filters=Filters(project="other")))
    assert none == []


def test_explain_reports_component_ranks(memory: Memory) -> None:
    hit = memory.recall(Query(text="database port", k=1, explain=True))[0]
    assert hit.explanation is not None
    assert hit.explanation.keyword_rank == 1
    assert hit.explanation.vector_rank is not None


def test_recall_bumps_access_stats(memory: Memory) -> None:
    hit = memory.recall(Query(text="ruff mypy", k=1))[0]
    record = memory.get(hit.record.id)
    assert record.access_count == hit.record.access_count + 1
    assert record.last_access_at is not None
    assert sum(len(times) for times in memory.backend.access_times().values()) >= 1


def test_forget_removes_from_both_indexes(memory: Memory) -> None:
    hit = memory.recall(Query(text="nightly backups", k=1))[0]
    memory.forget(hit.record.id[:8])
    for mode in SearchMode:
        texts = [h.record.text for h in memory.recall(Query(text="nightly backups", mode=mode))]
        assert hit.record.text not in texts
    with pytest.raises(NotFoundError):
        memory.get(hit.record.id)


def test_bad_input_is_a_usage_error(memory: Memory) -> None:
    with pytest.raises(UsageError):
        memory.remember(NewRecord(text="   "))
    with pytest.raises(UsageError):
        memory.remember(NewRecord(text="x", importance=1.5))
    with pytest.raises(UsageError):
        memory.recall(Query(text=""))
    with pytest.raises(UsageError):
        memory.get("ab")
    with pytest.raises(UsageError, match="tags are short labels"):
        memory.remember(NewRecord(text="x", tags=("t" * 5000,)))
    with pytest.raises(UsageError, match="short word"):
        memory.remember(NewRecord(text="x", kind="k" * 201))
    assert memory.remember(NewRecord(text="x", tags=("t" * 200,), kind="k" * 200)).created


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        (
            NewRecord(text="x", kind="note\x01"),
            "the kind 'note\\x01' holds a control character (U+0001)",
        ),
        (NewRecord(text="x", tags=("ok", "a\x1b[31m")), "the tag 'a\\x1b[31m'"),
        (NewRecord(text="x", tags=("a\tb",)), "(U+0009)"),
        (
            NewRecord(text="x", project="p\x7f"),
            "the project 'p\\x7f' holds a control character (U+007F)",
        ),
        (NewRecord(text="x", session="s\x9f"), "the session 's\\x9f'"),
        (NewRecord(text="x", session="s\n"), "(U+000A)"),
        (NewRecord(text="a\x00b"), "NUL"),
    ],
)
def test_control_characters_in_labels_and_nul_in_text_are_refused(
    memory: Memory, item: NewRecord, needle: str
) -> None:
    with pytest.raises(UsageError) as err:
        memory.remember_many([NewRecord(text="fine"), item])
    assert needle in err.value.message
    assert memory.backend.count() == len(DOCS)  # the good item before it was not written


def test_text_keeps_tabs_newlines_and_other_controls_labels_keep_any_printable_text(
    memory: Memory,
) -> None:
    text = "line one\n\tindented\r\nbell \x07 and escape \x1b[1m"
    label = "Ünïcode label ✓ with spaces and 中文"
    done = memory.remember(NewRecord(text=text, kind=label, tags=(label,), project=label))
    record = memory.get(done.id)
    assert (record.text, record.kind, record.tags, record.project) == (text, label, (label,), label)


@pytest.mark.parametrize("field", ["kind", "project", "session", "tags"])
def test_a_filter_with_a_control_character_is_refused(memory: Memory, field: str) -> None:
    value: object = ("a\x01",) if field == "tags" else "a\x01"
    with pytest.raises(UsageError, match=r"to filter by 'a\\x01' holds a control character"):
        memory.recall(Query(text="x", filters=Filters(**{field: value})))  # type: ignore[arg-type]


def test_a_label_stored_before_the_rule_does_not_block_editing_the_text(memory: Memory) -> None:
    done = memory.remember(NewRecord(text="old text"))
    with memory.backend.store.write() as conn:
        conn.execute("UPDATE records SET kind = 'k\x01' WHERE id = ?", (done.id,))
    assert memory.edit(done.id, "new text").text == "new text"
    with pytest.raises(UsageError, match="NUL"):
        memory.edit(done.id, "new\x00text")


def test_a_different_model_is_refused_before_writing(memory: Memory) -> None:
    other = make(HashEmbedder(dim=32))
    with pytest.raises(DimensionMismatchError, match="reindex --reembed"):
        other.remember(NewRecord(text="new text"))
    same_dim_other_model = make(HashEmbedder(dim=64, model_id="other-64"))
    with pytest.raises(DimensionMismatchError):
        same_dim_other_model.recall(Query(text="database"))
    assert memory.backend.count() == len(DOCS)


def test_reembed_switches_the_store_to_the_new_model(memory: Memory) -> None:
    other = make(HashEmbedder(dim=32, model_id="hash-32"))
    result = reindex(other, reembed_vectors=True)
    assert result["reembedded"] == len(DOCS)
    assert other.stored_model == ("hash-32", 32)
    assert "5433" in other.recall(Query(text="database port", k=1))[0].record.text
    assert verify(other).ok


def test_index_backlog_is_searched_and_folded(memory: Memory) -> None:
    memory.sync_indexes()
    health = memory.backend.indexes.health()
    assert sum(int(h["indexed"]) for h in health.values()) == len(DOCS)
    late = memory.remember(NewRecord(text="A brand new fact about zebras", layer=Layer.ASSETS))
    fresh = make()
    hit = fresh.recall(Query(text="zebras", k=1, mode=SearchMode.VECTOR))[0]
    assert hit.record.id == late.id
    assert fresh.backend.indexes.health()[Layer.ASSETS]["backlog"] == 1


def test_damaged_index_file_is_rebuilt_with_a_warning(memory: Memory) -> None:
    memory.sync_indexes()
    path = memory.backend.indexes.path(Layer.ASSETS)
    path.write_bytes(b"garbage" * 10)
    warnings: list[str] = []
    fresh = Memory(load_settings(), embedder=HashEmbedder(), warn=warnings.append)
    hits = fresh.recall(Query(text="ruff mypy commit", k=1, mode=SearchMode.VECTOR))
    assert "ruff" in hits[0].record.text
    assert any("rebuilding" in w for w in warnings)
    assert verify(fresh).ok


def test_verify_detects_a_missing_index_entry(memory: Memory) -> None:
    memory.sync_indexes()
    assert verify(memory).ok
    # Corrupt the truth behind the index's back: drop a journal-less vector row change.
    memory.backend.store.conn.execute("DROP TRIGGER records_journal_delete")
    memory.backend.store.conn.execute(
        "DELETE FROM records WHERE layer = 'assets' AND text LIKE 'Use ruff%'"
    )
    report = verify(memory)  # this process still holds the index as it was
    assert not report.ok
    assert any("assets vector index" in p for p in report.problems)
    warnings: list[str] = []
    fresh = Memory(load_settings(), embedder=HashEmbedder(), warn=warnings.append)
    assert verify(fresh).ok  # a fresh open notices the count mismatch and rebuilds
    assert any("disagrees with the store" in w for w in warnings)


def test_writer_lock_times_out_with_a_clear_error(memory: Memory) -> None:
    other = make(**{"memory.lock_timeout": "0.2"})
    with (
        memory.backend.store.locked(),
        pytest.raises(StoreLockedError, match="another magray process"),
    ):
        other.remember(NewRecord(text="blocked"))


def test_readers_do_not_block_while_a_writer_holds_the_lock(memory: Memory) -> None:
    reader = make()
    with memory.backend.store.write():
        started = time.perf_counter()
        hits = reader.recall(Query(text="database", k=2))
        assert hits
        assert time.perf_counter() - started < 5


def test_store_is_wal_and_fts_is_consistent(memory: Memory, magray_home: Path) -> None:
    conn = sqlite3.connect(magray_home / "data" / "memory.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [1, 2, 3, 4, 5, 6, 7]
    assert verify(memory).ok


def test_disk_full_fails_cleanly_and_loses_nothing(memory: Memory) -> None:
    from magray.errors import StoreError

    before = memory.backend.count()
    pages = memory.backend.store.conn.execute("PRAGMA page_count").fetchone()[0]
    memory.backend.store.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match="full"):
        memory.remember_many([NewRecord(text=f"filler {i} " + "x" * 4000) for i in range(50)])
    memory.backend.store.conn.execute("PRAGMA max_page_count = 1073741823")
    assert memory.backend.count() == before
    assert verify(memory).ok
    assert memory.remember(NewRecord(text="writes work again")).created


@pytest.mark.parametrize("dtype", ["f16", "i8"])
def test_quantized_indexes_rescore_with_exact_vectors(dtype: str) -> None:
    mem = make(**{"memory.vector_dtype": dtype})
    for text, layer, tags in DOCS:
        mem.remember(NewRecord(text=text, layer=layer, tags=tags))
    mem.sync_indexes()
    hit = make(**{"memory.vector_dtype": dtype}).recall(
        Query(text="database port", k=1, mode=SearchMode.VECTOR)
    )[0]
    assert "5433" in hit.record.text
    assert 0 < hit.score <= 1
    assert mem.backend.indexes.path(Layer.INSIGHTS).name.endswith(f".{dtype}.usearch")


@pytest.mark.parametrize("mode", list(SearchMode))
def test_ranks_do_not_depend_on_k(mode: SearchMode) -> None:
    """The top 5 of k = 5 are the top 5 of k = 50 and of k = all, in every mode."""
    memory = make(**{"search.weight_assets": 1.3, "search.recency_half_life_days": 3.0})
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    items = [
        NewRecord(
            text=f"{words[i % 8]} {words[(i * 3) % 8]} note {i} about {words[(i * 5) % 8]}",
            layer=list(Layer)[i % 3],
        )
        for i in range(300)
    ]
    memory.remember_many(items)
    query = "alpha gamma note"
    tops = [
        [h.record.id for h in memory.recall(Query(text=query, k=k, mode=mode))][:5]
        for k in (5, 50, 300)
    ]
    assert tops[0] == tops[1] == tops[2]
    assert len(tops[0]) == 5


def test_recall_fetches_full_records_only_for_hits(memory: Memory) -> None:
    memory.remember_many([NewRecord(text=f"shared words record {i}") for i in range(150)])
    fetched: list[int] = []
    original = memory.backend.store.fetch

    def counting(nums, filters=None):  # type: ignore[no-untyped-def]
        nums = list(nums)
        fetched.extend(nums)
        return original(nums, filters)

    memory.backend.store.fetch = counting  # type: ignore[method-assign]
    hits = memory.recall(Query(text="shared words record", k=3))
    assert len(hits) == 3
    assert len(fetched) == 3
