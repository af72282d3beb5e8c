"""Contract: vector search, keyword search and the derived indexes."""

from __future__ import annotations

import numpy as np
import pytest

from magray.memory.backends import Backend
from magray.memory.records import Filters, Layer, NewRecord
from magray.memory.search.keywords import keyword_terms
from tests.fakes import HashEmbedder
from tests.memory.contract.conftest import NOW, Insert

WORDS = [
    "red",
    "green",
    "blue",
    "cyan",
    "amber",
    "lime",
    "teal",
    "navy",
    "plum",
    "rose",
    "gold",
    "jade",
]


def corpus(n: int) -> list[str]:
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(WORDS, size=4)) + f" item{i}" for i in range(n)]


def test_vector_search_top_k_matches_numpy(backend: Backend, embedder: HashEmbedder) -> None:
    rng = np.random.default_rng(11)
    matrix = rng.normal(size=(400, embedder.dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    pairs = [
        (NewRecord(f"doc {i}", layer=Layer.ASSETS), matrix[i].astype("<f4").tobytes())
        for i in range(len(matrix))
    ]
    results = backend.insert(pairs, model_id=embedder.model_id, dim=embedder.dim, now=NOW)
    by_num = {r.num: i for i, r in enumerate(results)}
    hits = 0
    for qi in range(20):
        qvec = rng.normal(size=embedder.dim).astype(np.float32)
        qvec /= np.linalg.norm(qvec)
        sims = matrix @ qvec
        expected = {results[int(i)].num for i in np.argsort(-sims)[:10]}
        found = backend.vector_search(Layer.ASSETS, qvec, 10, Filters())
        assert len(found) == 10, qi
        assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
        for num, sim in found:
            assert sim == pytest.approx(float(sims[by_num[num]]), abs=1e-3)
        hits += len({n for n, _ in found} & expected)
    assert hits / 200 >= 0.95  # approximate search: recall@10 over 20 queries
    assert backend.index_health()[Layer.ASSETS]["expected"] == 400
    backend.sync_indexes()
    assert backend.index_health()[Layer.ASSETS]["indexed"] == 400


def test_vector_search_keeps_layers_apart_and_filters(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    a = insert([NewRecord("blue sky", layer=Layer.INTERACT, tags=("t",))])[0]
    b = insert([NewRecord("blue sea", layer=Layer.ASSETS)])[0]
    qvec = embedder.embed_queries(["blue"])[0]
    assert [n for n, _ in backend.vector_search(Layer.INTERACT, qvec, 5, Filters())] == [a.num]
    assert [n for n, _ in backend.vector_search(Layer.ASSETS, qvec, 5, Filters())] == [b.num]
    assert backend.vector_search(Layer.INSIGHTS, qvec, 5, Filters()) == []
    tagged = backend.vector_search(Layer.INTERACT, qvec, 5, Filters(tags=("t",)))
    assert [n for n, _ in tagged] == [a.num]
    backend.delete([a.num])
    left = backend.vector_search(Layer.INTERACT, qvec, 5, Filters())
    assert backend.candidates([n for n, _ in left], Filters()) == {}


def test_vector_search_on_an_empty_store(backend: Backend, embedder: HashEmbedder) -> None:
    qvec = embedder.embed_queries(["anything"])[0]
    assert backend.vector_search(Layer.ASSETS, qvec, 5, Filters()) == []


def test_keyword_search_folds_case_in_every_script(backend: Backend, insert: Insert) -> None:
    cat = insert([NewRecord("Кошка спит на диване", layer=Layer.INSIGHTS)])[0]
    insert([NewRecord("The dog sleeps outside")])
    hits = backend.keyword_search(keyword_terms("кошка"), Filters(), 10)
    assert [h.num for h in hits] == [cat.num]
    assert hits[0].layer is Layer.INSIGHTS and hits[0].created_at == NOW and hits[0].score > 0
    assert [h.num for h in backend.keyword_search(["КОШКА".lower()], Filters(), 10)] == [cat.num]
    upper = insert([NewRecord("DEPLOY on Friday")])[0]
    assert [h.num for h in backend.keyword_search(keyword_terms("deploy"), Filters(), 5)] == [
        upper.num
    ]


def test_keyword_search_ranks_filters_and_limits(backend: Backend, insert: Insert) -> None:
    many = insert([NewRecord("port port port database", layer=Layer.ASSETS, project="p")])[0]
    one = insert([NewRecord("the database listens on a port somewhere far away")])[0]
    insert([NewRecord("nothing relevant here")])
    hits = backend.keyword_search(["port", "database"], Filters(), 10)
    assert [h.num for h in hits] == [many.num, one.num]
    assert hits[0].score >= hits[1].score
    assert [h.num for h in backend.keyword_search(["port"], Filters(), 1)] == [many.num]
    only = backend.keyword_search(["port"], Filters(layers=(Layer.INTERACT,)), 10)
    assert [h.num for h in only] == [one.num]
    assert [h.num for h in backend.keyword_search(["port"], Filters(project="p"), 10)] == [many.num]
    assert backend.keyword_search([], Filters(), 10) == []
    assert backend.keyword_search(['"quoted'], Filters(), 10) == []


def test_sync_and_rebuild_keep_the_indexes_whole(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    results = insert([NewRecord(t, layer=Layer.INSIGHTS) for t in corpus(40)])
    backend.sync_indexes()
    health = backend.index_health()[Layer.INSIGHTS]
    assert health["searchable"] == health["expected"] == 40
    counts = backend.rebuild_indexes()
    assert counts[Layer.INSIGHTS] == 40 and counts[Layer.ASSETS] == 0
    qvec = embedder.embed_queries([corpus(40)[3]])[0]
    assert backend.vector_search(Layer.INSIGHTS, qvec, 1, Filters())[0][0] == results[3].num
    assert backend.keyword_search(["item3"], Filters(), 5)[0].num == results[3].num
    assert not backend.verify().problems


def test_stale_vectors_and_re_embedding(
    backend: Backend, insert: Insert, embedder: HashEmbedder
) -> None:
    results = insert([NewRecord(t) for t in ("one", "two", "three")])
    assert backend.count_stale_vectors(embedder.model_id) == 0
    assert backend.count_stale_vectors("other") == 3
    first = backend.stale_vectors("other", after=0, limit=2)
    assert first == [(results[0].num, "one"), (results[1].num, "two")]
    assert backend.stale_vectors("other", after=first[-1][0], limit=2) == [
        (results[2].num, "three")
    ]
    other = HashEmbedder(dim=16, model_id="other")
    blobs = [
        (num, np.asarray(other.embed_documents([t])[0], dtype="<f4").tobytes())
        for num, t in backend.stale_vectors("other", after=0, limit=10)
    ]
    backend.set_vectors(blobs, "other")
    backend.set_embedding_model("other", 16)
    assert backend.embedding_model() == ("other", 16)
    assert backend.count_stale_vectors("other") == 0
    qvec = other.embed_queries(["two"])[0]
    assert backend.vector_search(Layer.INTERACT, qvec, 1, Filters())[0][0] == results[1].num


def test_keyword_ranking_is_keyword_search_without_the_records(
    backend: Backend, insert: Insert
) -> None:
    insert([NewRecord(f"port {'port ' * (i % 4)}database note {i}") for i in range(30)])
    insert([NewRecord("port of the assets", layer=Layer.ASSETS, project="p")])
    terms = keyword_terms("database port")
    for filters in (Filters(), Filters(layers=(Layer.ASSETS,)), Filters(project="p")):
        for limit in (1, 7, 100):
            hits = backend.keyword_search(terms, filters, limit)
            assert backend.keyword_ranking(terms, filters, limit) == [
                (h.num, h.score) for h in hits
            ]
    assert backend.keyword_ranking([], Filters(), 5) == []
