"""Query embeddings made ahead of the tenant's lock, in batches (server/query_batch.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from starlette.testclient import TestClient

from magray.errors import ModelError
from magray.server.query_batch import QueryBatcher
from tests.fakes import HashEmbedder
from tests.server.test_metrics import samples, value


class Gated(HashEmbedder):
    """A hash embedder that records its query batches; the first call waits for ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.fail = False

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.batches.append(list(texts))
        self.entered.set()
        self.gate.wait()
        if self.fail:
            raise ModelError("the model is broken; reinstall it.")
        return super().embed_queries(texts)


def pending(batcher: QueryBatcher) -> int:
    with batcher._wake:
        return len(batcher._jobs)


def test_waiting_queries_are_embedded_in_one_batch_and_taken_once() -> None:
    inner = Gated()
    batcher = QueryBatcher(inner)
    first = threading.Thread(target=batcher.embed_ahead, args=("alpha",))
    first.start()
    inner.entered.wait()  # the model is busy with "alpha"
    others = [threading.Thread(target=batcher.embed_ahead, args=(t,)) for t in ("b", "c", "d")]
    for t in others:
        t.start()
    for _ in range(60_000):  # all three wait behind the busy model (a generous bound)
        if pending(batcher) == 3:
            break
        threading.Event().wait(0.01)
    assert pending(batcher) == 3
    inner.gate.set()
    for t in [first, *others]:
        t.join()
    assert inner.batches[0] == ["alpha"]
    assert sorted(inner.batches[1]) == ["b", "c", "d"] and len(inner.batches) == 2
    assert batcher.batches == 2 and batcher.embedded == 4

    # the recall's own call takes the vector made ahead: no model call ...
    got = batcher.embed_queries(["c", "alpha"])
    assert len(inner.batches) == 2
    np.testing.assert_allclose(got, HashEmbedder().embed_queries(["c", "alpha"]))
    # ... once: the same text again is embedded anew
    batcher.embed_queries(["c"])
    assert inner.batches[-1] == ["c"]
    batcher.close()


def test_a_model_failure_reaches_every_waiting_request() -> None:
    inner = Gated()
    inner.fail = True
    inner.gate.set()
    batcher = QueryBatcher(inner)
    with pytest.raises(ModelError, match="reinstall"):
        batcher.embed_ahead("alpha")
    with pytest.raises(ModelError, match="reinstall"):
        asyncio.run(batcher.embed_ahead_async("beta"))
    batcher.close()


def test_async_callers_wait_without_a_thread_and_close_stops_the_thread() -> None:
    inner = Gated()
    inner.gate.set()
    batcher = QueryBatcher(inner)

    async def many() -> None:
        await asyncio.gather(*(batcher.embed_ahead_async(f"q{i}") for i in range(10)))

    asyncio.run(many())
    assert batcher.embedded == 10
    assert sorted(t for b in inner.batches for t in b) == sorted(f"q{i}" for i in range(10))
    batcher.close()
    assert batcher._thread is not None and not batcher._thread.is_alive()
    batcher.embed_ahead("late")  # after close: nothing made ahead, the recall embeds it
    assert batcher.embedded == 10
    assert batcher.embed_queries(["late"]).shape == (1, 64)


def test_each_search_embeds_its_query_once(client: TestClient, key: Any) -> None:
    h = key("writer", "qb")
    for text in ("the staging port is 5433", "deploys run on fridays"):
        assert client.post("/v1/memories", json={"text": text}, headers=h).status_code == 201
    admin = key("admin")
    before = value(samples(client, admin), "magray_embedded_texts", "magray_embedded_texts_total")
    for query in ("staging port", "fridays", "staging port"):
        r = client.post("/v1/memories/search", json={"query": query}, headers=h)
        assert r.status_code == 200 and r.json()["hits"]
    keyword = client.post(
        "/v1/memories/search", json={"query": "port", "mode": "keyword"}, headers=h
    )
    assert keyword.status_code == 200
    after = value(samples(client, admin), "magray_embedded_texts", "magray_embedded_texts_total")
    assert after - before == 3  # made ahead and used by the recall, never twice; none for BM25
    batcher = client.app.fastapi.state.services.tenants.embedded()  # type: ignore[attr-defined]
    assert isinstance(batcher, QueryBatcher) and batcher.embedded == 3
    r = client.post("/v1/memories/search", json={"query": "staging port"}, headers=h)
    assert r.json()["hits"][0]["text"] == "the staging port is 5433"


def test_a_query_in_the_embedding_cache_skips_the_batch(
    make_client: Any, key: Any, tmp_path: Any
) -> None:
    from magray.embed.cache import CachedEmbedder, EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache.db")
    client = make_client(embedder=CachedEmbedder(HashEmbedder(), cache))
    h = key("writer", "qc")
    for text in ("the staging port is 5433", "deploys run on fridays"):
        assert client.post("/v1/memories", json={"text": text}, headers=h).status_code == 201
    batcher = client.app.fastapi.state.services.tenants.embedded()  # type: ignore[attr-defined]
    assert isinstance(batcher, QueryBatcher)
    admin = key("admin")
    embedded = lambda: value(  # noqa: E731
        samples(client, admin), "magray_embedded_texts", "magray_embedded_texts_total"
    )
    before = embedded()
    first = client.post("/v1/memories/search", json={"query": "staging port"}, headers=h)
    assert first.status_code == 200 and batcher.embedded == 1  # not cached yet: batched
    again = client.post("/v1/memories/search", json={"query": "staging port"}, headers=h)
    assert again.json() == first.json()
    assert batcher.embedded == 1  # the cached vector, without the batch
    assert embedded() - before == 2  # both searches' vectors are counted
    assert not batcher._kept  # the recall took the vector kept for it
    cache.close()
