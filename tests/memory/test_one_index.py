"""One vector index over every layer: layer filters, moves, older per-layer files, f16 at rest."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magray.config import load_settings
from magray.memory.backends.sqlite import index_search
from magray.memory.backends.sqlite import vector_index as vi
from magray.memory.backends.sqlite.vector_codec import (
    HALF_TAG,
    at_rest,
    dimension,
    float32_bytes,
    to_float32,
)
from magray.memory.maintenance import verify
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from magray.memory.transfer.jsonl import export, import_
from tests.fakes import HashEmbedder

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "rho",
]


def make(warnings: list[str] | None = None, **overrides: object) -> Memory:
    settings = load_settings({"memory.auto_lifecycle": False, **overrides})
    warn = warnings.append if warnings is not None else None
    return Memory(settings, embedder=HashEmbedder(), warn=warn)


def fill(memory: Memory, sizes: dict[Layer, int]) -> None:
    rng = np.random.default_rng(7)
    items = [
        NewRecord(text=" ".join(rng.choice(WORDS, size=6).tolist()) + f" {layer} {i}", layer=layer)
        for layer, n in sizes.items()
        for i in range(n)
    ]
    memory.remember_many(items)
    memory.sync_indexes()


def exact_sims(memory: Memory, qvec: np.ndarray, layers: tuple[Layer, ...]) -> dict[int, float]:
    rows = [r for r in memory.backend.iter_records() if r.record.layer in layers]
    vecs = memory.backend.vectors([r.num for r in rows])
    return {n: float(np.frombuffer(b, dtype="<f4") @ qvec) for n, (_, b) in vecs.items()}


def check_top(found: list[tuple[int, float]], exact: dict[int, float], k: int) -> None:
    """``found`` is a best ``k`` of ``exact`` (ties may pick either label)."""
    assert len(found) == k and all(n in exact for n, _ in found)
    best = sorted(exact.values(), reverse=True)[:k]
    assert [round(exact[n], 5) for n, _ in found] == [round(v, 5) for v in best]


@pytest.mark.parametrize(("exact_limit", "per_ef", "exact"), [(0, 12, 0), (50, 12, 1), (50, 0, 0)])
def test_a_layer_filter_returns_that_layers_best(
    monkeypatch: pytest.MonkeyPatch, exact_limit: int, per_ef: int, exact: int
) -> None:
    """Over-fetching from the one graph (exact_limit 0, or a small layer that is large
    against the expansion: per_ef 0) and brute force over a small layer (exact_limit 50:
    the 40-vector interact layer) both give the layer's exact top k."""
    monkeypatch.setattr(vi, "EXACT_LIMIT", exact_limit)
    monkeypatch.setattr(index_search, "EXACT_LIMIT", exact_limit)
    monkeypatch.setattr(index_search, "EXACT_PER_EF", per_ef)
    # one build thread: a graph built on every core differs from run to run, and can leave
    # a node that a search, however wide, does not reach; this test is about the filter
    monkeypatch.setattr(vi, "BUILD_BATCH", 1 << 30)
    exact_calls: list[int] = []
    brute_force = index_search._exact_layers

    def spy(*args: Any, **kw: Any) -> Any:
        exact_calls.append(1)
        return brute_force(*args, **kw)

    monkeypatch.setattr(index_search, "_exact_layers", spy)
    with make() as memory:
        fill(memory, {Layer.INTERACT: 40, Layer.INSIGHTS: 300, Layer.ASSETS: 300})
        memory.backend.indexes.ef = 400  # a wide search: the graph answers exactly here
        for text in ("alpha beta gamma", "omega rho sigma kappa", "zeta theta"):
            qvec = memory.embed_query(text)
            for layers in ((Layer.INTERACT,), (Layer.ASSETS,), (Layer.INTERACT, Layer.ASSETS)):
                found = memory.vector_candidates(qvec, 5, Filters(layers=layers), layers)
                check_top(found, exact_sims(memory, qvec, layers), 5)
            every = tuple(Layer)
            found = memory.vector_candidates(qvec, 5, Filters(), every)
            check_top(found, exact_sims(memory, qvec, every), 5)
        assert bool(exact_calls) == bool(exact)


def test_a_record_moved_to_another_layer_is_found_only_there() -> None:
    with make() as memory:
        fill(memory, {Layer.INTERACT: 5, Layer.INSIGHTS: 5, Layer.ASSETS: 5})
        moved = memory.remember(NewRecord(text="penguins huddle in winter", layer=Layer.INTERACT))
        memory.sync_indexes()
        num = memory.backend.resolve(moved.id).num
        memory.backend.update(num, now=1.0, layer=Layer.ASSETS)  # promoted: backlog only
        qvec = memory.embed_query("penguins huddle in winter")

        def top(layer: Layer) -> list[int]:
            return [n for n, _ in memory.vector_candidates(qvec, 3, Filters(), (layer,))]

        for _ in range(2):  # before and after the fold
            assert top(Layer.ASSETS)[0] == num
            assert num not in top(Layer.INTERACT)
            hits = memory.recall(Query(text="penguins huddle in winter", mode=SearchMode.VECTOR))
            assert hits[0].record.id == moved.id and hits[0].record.layer is Layer.ASSETS
            assert verify(memory).ok
            memory.sync_indexes()
        health = memory.backend.indexes.health()
        assert health[Layer.ASSETS]["searchable"] == health[Layer.ASSETS]["expected"] == 6


def test_older_per_layer_files_are_replaced_once(magray_home: Path) -> None:
    with make() as memory:
        memory.backend._apart = None  # type: ignore[attr-defined]  # vectors in the rows
        fill(memory, {Layer.INTERACT: 3, Layer.INSIGHTS: 3, Layer.ASSETS: 3})
        index_dir = memory.backend.indexes.path().parent
        one = memory.backend.indexes.path()
    # what an earlier version left: one file and sidecar per layer, no single file
    one.unlink()
    Path(str(one) + ".json").unlink()
    for layer in Layer:
        old = vi.VectorIndex.create(
            index_dir / f"{layer}.hash-64.f32.usearch", model_id="hash-64", dim=64
        )
        old.add([1], np.ones((1, 64), dtype=np.float32) / 8)
        old.save()
    assert len(list(index_dir.iterdir())) == 6
    warnings: list[str] = []
    with make(warnings) as memory:
        hits = memory.recall(Query(text=memory.backend.fetch([4])[4].record.text, k=1))
        assert hits and verify(memory).ok
    assert len(warnings) == 1 and "once, replacing the per-layer files" in warnings[0]
    assert sorted(p.name for p in index_dir.iterdir()) == [one.name, one.name + ".json"]


def test_float16_at_rest_round_trips() -> None:
    rng = np.random.default_rng(1)
    vec = rng.standard_normal(384).astype("<f4")
    blob = vec.tobytes()
    half = at_rest(blob, True)
    assert len(half) == 2 * 384 + 1 and half.endswith(HALF_TAG) and dimension(half) == 384
    assert at_rest(blob, False) == blob and dimension(blob) == 384
    assert np.allclose(to_float32(half), vec, rtol=1e-3, atol=1e-4)
    again = float32_bytes(half)
    assert at_rest(again, True) == half  # f32 -> f16 -> f32 -> f16: the same bytes
    huge = np.full(4, 1e6, dtype="<f4").tobytes()
    assert at_rest(huge, True) == huge  # beyond float16: kept float32


def test_an_f16_store_keeps_half_the_vector_bytes_and_exports_exactly(
    magray_home: Path, tmp_path: Path
) -> None:
    with make(**{"memory.vector_dtype": "f32"}) as memory:  # an older f32 record stays f32
        memory.remember(NewRecord(text="the staging database listens on port 5433"))
    with make(**{"memory.vector_dtype": "f16"}) as memory:
        fill(memory, {Layer.INTERACT: 4, Layer.INSIGHTS: 4, Layer.ASSETS: 4})
        hit = memory.recall(Query(text="database port 5433", k=1, mode=SearchMode.VECTOR))[0]
        assert "5433" in hit.record.text
        assert verify(memory).ok
        first = io.StringIO()
        export(memory, first, with_vectors=True)
        db = sqlite3.connect(magray_home / "data" / "memory.db")
        memory.remember(NewRecord(text="one more note"))  # not yet in a saved file
        assert [int(r[0]) for r in db.execute("SELECT LENGTH(vector) FROM vector_backlog")] == [
            4 * 64,
            2 * 64 + 1,
        ]
        memory.sync_indexes()
        # the f16 file holds the f16 vectors: the store keeps none of them, only the f32
        # one (the f16 file would round it)
        assert {int(r[0]) for r in db.execute("SELECT LENGTH(vector) FROM records")} == {0}
        assert [int(r[0]) for r in db.execute("SELECT LENGTH(vector) FROM vector_backlog")] == [
            4 * 64
        ]
        db.close()
        memory.forget(memory.list_records(Filters(), limit=1)[0].id)  # the newest one
        again = io.StringIO()
        export(memory, again, with_vectors=True)  # the vectors now come from the file
        assert again.getvalue() == first.getvalue()
    settings = load_settings({"memory.vector_dtype": "f16"}).with_overrides(
        {"memory.auto_lifecycle": False}, source="test"
    )
    from magray.bench.memory import with_home

    dumps = [first.getvalue()]
    for name in ("second", "third"):  # export -> import -> export gives the same bytes
        with Memory(with_home(settings, tmp_path / name), embedder=HashEmbedder()) as target:
            report = import_(target, io.StringIO(dumps[-1]))
            assert report.imported == 13 and report.embedded == 0
            out = io.StringIO()
            export(target, out, with_vectors=True)
            dumps.append(out.getvalue())
    assert dumps[2] == dumps[1]
    assert len(dumps[1].splitlines()) == 14


def test_a_layer_search_widens_its_expansion_in_proportion_to_the_layers_rarity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ef · (1 + WIDEN · (1 / share − 1)): 1.27 × for a layer of 47 %, 4.6 × for one of 6 %
    (the square root of 1 / share gave 1.46 × and 4 ×)."""
    monkeypatch.setattr(vi, "EXACT_LIMIT", 0)
    monkeypatch.setattr(index_search, "EXACT_LIMIT", 0)
    asked: list[int] = []
    search_keys = vi.VectorIndex.search_keys

    def spy(self: Any, query: Any, count: int, ef: int) -> Any:
        asked.append(ef)
        return search_keys(self, query, count, ef)

    monkeypatch.setattr(vi.VectorIndex, "search_keys", spy)
    with make() as memory:
        fill(memory, {Layer.INTERACT: 40, Layer.INSIGHTS: 300, Layer.ASSETS: 300})
        memory.backend.indexes.ef = 64
        qvec = memory.embed_query("alpha beta gamma")
        for layers in ((Layer.ASSETS,), (Layer.INTERACT,), tuple(Layer)):
            asked.clear()
            found = memory.vector_candidates(qvec, 5, Filters(layers=layers), layers)
            check_top(found, exact_sims(memory, qvec, layers), 5)
            assert (
                asked[0]
                == {
                    (Layer.ASSETS,): 82,  # ceil(64 · (1 + 0.24 · (640 / 300 − 1)))
                    (Layer.INTERACT,): 295,  # ceil(64 · (1 + 0.24 · (640 / 40 − 1)))
                    tuple(Layer): 64,
                }[layers]
            )
