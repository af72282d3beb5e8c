"""The derived index files and a reader that opens them while a writer saves them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.memory.records import Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder


def make(warnings: list[str] | None = None) -> Memory:
    settings = load_settings({"memory.auto_lifecycle": False})
    warn = warnings.append if warnings is not None else None
    return Memory(settings, embedder=HashEmbedder(), warn=warn)


def test_reader_between_a_writers_two_files_waits_for_the_save(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with make() as writer:
        writer.remember(NewRecord(text="penguins huddle in winter", layer=Layer.ASSETS))
        writer.sync_indexes()
        sidecar = Path(str(writer.backend.indexes.path(Layer.ASSETS)) + ".json")
    saved = sidecar.read_bytes()
    query = Query(text="penguins huddle", mode=SearchMode.VECTOR)

    # A save replaces the index file first, then writes its sidecar, holding the writer
    # lock throughout: a reader that asks for the lock gets it once the sidecar is there.
    sidecar.unlink()
    warnings: list[str] = []
    with make(warnings) as reader:
        real_locked = reader.backend.store.locked

        @contextmanager
        def locked(timeout: float | None = None) -> Iterator[None]:
            sidecar.write_bytes(saved)  # the writer finishes its save and lets go
            with real_locked(timeout):
                yield

        monkeypatch.setattr(reader.backend.store, "locked", locked)
        assert reader.recall(query)
    assert warnings == []

    # with no writer at work, a missing sidecar is damage: rebuilt, with a warning
    sidecar.unlink()
    with make(warnings) as reader:
        assert reader.recall(query)
    assert len(warnings) == 2 and "sidecar" in warnings[0] and "rebuilding" in warnings[0]
    # the store had dropped its copy of the vector the file held: embedded again
    assert "1 record(s) kept their vector only in the vector index" in warnings[1]


def test_a_write_committed_while_a_reader_opens_the_index_is_no_disagreement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from magray.memory.backends.sqlite.index_sync import IndexSet

    with make() as writer:
        writer.remember(NewRecord(text="penguins huddle in winter", layer=Layer.ASSETS))
        writer.sync_indexes()
        real_load = IndexSet._load_backlog
        committed: list[str] = []

        def load_then_write(self: IndexSet, state: object, *, sizes: bool = True) -> None:
            real_load(self, state, sizes=sizes)  # type: ignore[arg-type]
            if not committed:  # another process commits now
                result = writer.remember(NewRecord(text="note assets", layer=Layer.ASSETS))
                committed.append(result.id)

        monkeypatch.setattr(IndexSet, "_load_backlog", load_then_write)
        warnings: list[str] = []
        with make(warnings) as reader:
            assert reader.recall(Query(text="penguins huddle", mode=SearchMode.VECTOR))
        assert committed and warnings == []


def test_writes_by_this_or_another_memory_are_found_by_meaning_at_once() -> None:
    """An open store sees every committed vector: its own, another Memory's, past a fold."""
    from magray.memory.backends.sqlite.index_sync import FOLD_THRESHOLD

    def found(memory: Memory, text: str) -> list[str]:
        hits = memory.recall(Query(text=text, mode=SearchMode.VECTOR, k=3))
        return [h.record.text for h in hits]

    with make() as a, make() as b:
        a.remember(NewRecord(text="penguins huddle in winter", layer=Layer.ASSETS))
        assert found(a, "penguins huddle in winter")[0] == "penguins huddle in winter"
        assert found(b, "penguins huddle in winter")[0] == "penguins huddle in winter"

        a.remember(NewRecord(text="volcanoes erupt lava", layer=Layer.ASSETS))
        assert found(a, "volcanoes erupt lava")[0] == "volcanoes erupt lava"
        assert found(b, "volcanoes erupt lava")[0] == "volcanoes erupt lava"

        # another store folds a large backlog into the file and saves it
        a.remember_many(
            [NewRecord(text=f"filler note {i}", layer=Layer.ASSETS) for i in range(FOLD_THRESHOLD)]
        )
        a.remember(NewRecord(text="zebras run fast", layer=Layer.ASSETS))
        a.sync_indexes()
        assert found(b, "zebras run fast")[0] == "zebras run fast"
        assert found(b, "volcanoes erupt lava")[0] == "volcanoes erupt lava"
        assert b.backend.indexes is not None
        health = b.backend.indexes.health()[Layer.ASSETS]
        assert health["searchable"] == health["expected"] == FOLD_THRESHOLD + 3

        # a forgotten record leaves the other store's vector results too
        gone = found(b, "zebras run fast")
        a.forget(a.recall(Query(text="zebras run fast", k=1))[0].record.id)
        assert found(b, "zebras run fast")[0] != gone[0]
