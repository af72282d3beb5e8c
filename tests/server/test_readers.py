"""Searches on the tenant's readers: side by side, beside a write, and never stale."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from starlette.testclient import TestClient

from magray.errors import StoreError
from magray.memory.records import Query
from magray.observability.logs import request_id
from magray.server.readers import Readers
from magray.server.tenants import Tenant
from tests.server.conftest import AppFactory

WAIT = 120  # seconds: only reached when the behaviour under test is broken


class Handle:
    """A ``Memory`` seam: its recall waits at ``barrier`` (when given)."""

    def __init__(self, barrier: threading.Barrier | None = None) -> None:
        self.barrier = barrier
        self.recalls = 0
        self.flushed = 0
        self.closed = False

    def recall(self, query: Query) -> list[Any]:
        self.recalls += 1
        if self.barrier is not None:
            self.barrier.wait(WAIT)
        return []

    def flush_access(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed = True


def tenant_of(client: TestClient, name: str) -> Tenant:
    services = client.app.fastapi.state.services  # type: ignore[attr-defined]
    tenant: Tenant = services.tenants.get(name)
    return tenant


def test_readers_recall_side_by_side_and_are_reused() -> None:
    barrier = threading.Barrier(2)
    opened: list[Handle] = []

    def open_memory() -> Any:
        opened.append(Handle(barrier))
        return opened[-1]

    readers = Readers(open_memory, 2)
    threads = [threading.Thread(target=readers.recall, args=(Query(text="x"),)) for _ in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert not barrier.broken  # both recalls were inside recall at once
    for _ in range(5):
        barrier = threading.Barrier(1)
        for h in opened:
            h.barrier = barrier
        readers.recall(Query(text="y"))
    assert len(opened) == 2 and sum(h.recalls for h in opened) == 7  # no third handle
    readers.flush_access()
    assert [h.flushed for h in opened] == [1, 1]
    readers.close()
    assert all(h.closed for h in opened)
    with pytest.raises(StoreError, match="shutting down"):
        readers.recall(Query(text="z"))


def test_a_busy_reader_is_closed_when_its_recall_returns() -> None:
    entered, release = threading.Event(), threading.Event()
    handle = Handle()

    def recall(query: Query) -> list[Any]:
        entered.set()
        release.wait(WAIT)
        return []

    handle.recall = recall  # type: ignore[method-assign]
    readers = Readers(lambda: handle, 1)  # type: ignore[arg-type,return-value]
    t = threading.Thread(target=readers.recall, args=(Query(text="x"),))
    t.start()
    assert entered.wait(WAIT)
    readers.close()
    assert not handle.closed  # still recalling
    release.set()
    t.join(WAIT)
    assert handle.closed


def test_a_reader_that_fails_to_open_leaves_room_for_the_next() -> None:
    calls = {"n": 0}

    def open_memory() -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise StoreError("the store is damaged; restore a backup.")
        return Handle()

    readers = Readers(open_memory, 1)
    with pytest.raises(StoreError, match="damaged"):
        readers.recall(Query(text="x"))
    assert readers.recall(Query(text="x")) == []  # the slot was given back


def test_a_search_runs_while_a_write_holds_the_tenant_lock(
    make_client: AppFactory, key: Any
) -> None:
    client = make_client()
    h = key("writer", "busy")
    r = client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    assert r.status_code == 201
    tenant = tenant_of(client, "busy")
    assert tenant.readers is not None and tenant.readers.size == 2  # the default
    answers: list[Any] = []

    def search() -> None:
        answers.append(client.post("/v1/memories/search", json={"query": "staging"}, headers=h))

    with tenant.lock:  # a long write of the same tenant
        t = threading.Thread(target=search)
        t.start()
        t.join(WAIT)
        finished = not t.is_alive()
    t.join()
    assert finished, "the search waited for the tenant's lock"
    assert answers[0].status_code == 200
    assert answers[0].json()["hits"][0]["text"] == "the staging port is 5433"


def test_readers_find_what_was_just_written_and_forgotten(client: TestClient, key: Any) -> None:
    h = key("writer", "fresh")

    def texts(query: str, mode: str) -> list[str]:
        r = client.post("/v1/memories/search", json={"query": query, "mode": mode}, headers=h)
        assert r.status_code == 200, r.text
        return [hit["text"] for hit in r.json()["hits"]]

    # open the readers (and their indexes) before the writes they must see
    client.post("/v1/memories", json={"text": "an unrelated note about tea"}, headers=h)
    for mode in ("vector", "keyword", "hybrid"):
        assert "a deploy freeze starts on friday" not in texts("deploy freeze friday", mode)
    r = client.post("/v1/memories", json={"text": "a deploy freeze starts on friday"}, headers=h)
    new_id = r.json()["id"]
    for mode in ("vector", "keyword", "hybrid"):
        assert texts("deploy freeze friday", mode)[0] == "a deploy freeze starts on friday"
    assert client.delete(f"/v1/memories/{new_id}", headers=h).status_code == 200
    for mode in ("vector", "keyword", "hybrid"):
        assert "a deploy freeze starts on friday" not in texts("deploy freeze friday", mode)
    assert tenant_of(client, "fresh").readers is not None


def test_accesses_of_reader_searches_are_counted(client: TestClient, key: Any) -> None:
    h = key("writer", "counted")
    r = client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    record_id = r.json()["id"]
    for _ in range(3):
        r = client.post("/v1/memories/search", json={"query": "staging port"}, headers=h)
        assert r.json()["hits"][0]["id"] == record_id
    record = client.get(f"/v1/memories/{record_id}", headers=h).json()
    assert record["access_count"] == 3  # buffered by the readers, written before the read


def test_without_readers_searches_take_the_tenant_lock(make_client: AppFactory, key: Any) -> None:
    client = make_client(server__readers=0)
    h = key("writer", "one")
    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    tenant = tenant_of(client, "one")
    assert tenant.readers is None
    r = client.post("/v1/memories/search", json={"query": "staging"}, headers=h)
    assert r.json()["hits"][0]["text"] == "the staging port is 5433"


def test_searches_run_on_the_tenants_search_threads_one_per_reader(
    client: TestClient, key: Any
) -> None:
    h = key("writer", "threads")
    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    tenant = tenant_of(client, "threads")
    barrier = threading.Barrier(2)  # two searches at once, never a third thread

    def job() -> tuple[str, str]:
        barrier.wait(WAIT)
        return threading.current_thread().name, request_id.get()

    async def searches() -> list[tuple[str, str]]:
        request_id.set("rid-1")
        return await asyncio.gather(*(tenant.search(job) for _ in range(6)))

    done = asyncio.run(searches())
    names = {name for name, _ in done}
    assert len(names) == 2 and all(n.startswith("search-threads") for n in names)
    assert {rid for _, rid in done} == {"rid-1"}  # the caller's context, for the log lines
    seen: list[str] = []
    real = tenant.recall

    def recall(query: Query) -> list[Any]:
        seen.append(threading.current_thread().name)
        return real(query)

    tenant.recall = recall  # type: ignore[method-assign]
    r = client.post("/v1/memories/search", json={"query": "staging"}, headers=h)
    assert r.json()["hits"][0]["text"] == "the staging port is 5433"
    assert len(seen) == 1 and seen[0].startswith("search-threads")


def test_a_search_after_the_tenant_closed_is_refused(client: TestClient, key: Any) -> None:
    h = key("writer", "closing")
    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    tenant = tenant_of(client, "closing")
    tenant.close()
    with pytest.raises(StoreError, match="shutting down"):
        asyncio.run(tenant.search(lambda: None))


def test_without_readers_searches_run_on_the_servers_threads(
    make_client: AppFactory, key: Any
) -> None:
    client = make_client(server__readers=0)
    h = key("writer", "pooled")
    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    tenant = tenant_of(client, "pooled")
    name = asyncio.run(tenant.search(lambda: threading.current_thread().name))
    assert not name.startswith("search-")


def test_a_reranked_search_leaves_the_search_threads_free(client: TestClient, key: Any) -> None:
    h = key("writer", "reranked")
    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    tenant = tenant_of(client, "reranked")
    seen: list[tuple[str, bool]] = []

    def recall(query: Query) -> list[Any]:  # a seam: no reranker model in the tests
        seen.append((threading.current_thread().name, query.rerank))
        return []

    tenant.recall = recall  # type: ignore[method-assign]
    r = client.post("/v1/memories/search", json={"query": "staging", "rerank": True}, headers=h)
    assert r.status_code == 200 and r.json()["hits"] == []
    assert len(seen) == 1 and seen[0][1] is True
    assert not seen[0][0].startswith("search-")  # it takes the tenant's lock: the pool
