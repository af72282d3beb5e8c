"""Plain searches are answered by the fast path; everything else by FastAPI, unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from magray.observability.audit_chain import AuditChain, chain_file
from magray.server.fast_search import FastSearch
from tests.server.conftest import AppFactory
from tests.server.test_access import assert_problem
from tests.server.test_metrics import samples, value

SEARCH = "/v1/memories/search"


def fast_of(client: TestClient) -> FastSearch:
    fast = client.app.api.app  # type: ignore[attr-defined]  (site → guard → fast search)
    assert isinstance(fast, FastSearch)
    return fast


def post(client: TestClient, body: Any, headers: dict[str, str], ctype: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(SEARCH, content=data, headers={**headers, "Content-Type": ctype})


def test_a_plain_search_is_answered_by_the_fast_path_as_fastapi_answers_it(
    client: TestClient, key: Any
) -> None:
    h = key("writer", "f1")
    for text in ("the staging port is 8443", "lunch at noon on Fridays", "deploys on Tuesdays"):
        assert client.post("/v1/memories", json={"text": text}, headers=h).status_code == 201
    fast = fast_of(client)
    h = key("reader", "f1")  # a key never seen: FastAPI checks it and it is cached
    body = {"query": "staging port", "k": 2, "explain": True}
    first = post(client, body, h, "application/json")
    assert first.status_code == 200 and fast.answered == 0
    quick = post(client, body, h, "application/json")
    assert quick.status_code == 200 and fast.answered == 1
    assert quick.headers["x-request-id"] and quick.headers["content-type"] == "application/json"
    # application/merge+json is JSON to FastAPI, and not plain here: FastAPI answers it
    slow = post(client, body, h, "application/merge+json")
    assert slow.status_code == 200 and fast.answered == 1
    assert quick.json() == slow.json() == first.json()
    assert quick.json()["hits"][0]["text"] == "the staging port is 8443"
    found = samples(client, key("admin"))
    total = "magray_http_requests_total"
    assert value(found, "magray_http_requests", total, route=SEARCH, status="200") == 3
    recall = "magray_recall_duration_seconds"
    assert value(found, recall, recall + "_count", tenant="f1") == 3


def test_searches_that_are_not_plain_get_fastapis_answers(client: TestClient, key: Any) -> None:
    h = key("reader", "f2")
    assert post(client, {"query": "x"}, h, "application/json").status_code == 200  # cached now
    fast = fast_of(client)
    answered = fast.answered
    assert_problem(post(client, {"query": "x"}, {}, "application/json"), 401)
    bad = {"Authorization": "Bearer mgr_nope"}
    assert_problem(post(client, {"query": "x"}, bad, "application/json"), 401)
    assert_problem(post(client, {"query": "x", "k": 0}, h, "application/json"), 422)
    assert_problem(post(client, {"query": "x", "nope": 1}, h, "application/json"), 422)
    assert_problem(post(client, b'{"query": ', h, "application/json"), 422)
    assert_problem(post(client, b"", h, "application/json"), 422)
    assert_problem(post(client, {"query": "x"}, h, "text/plain"), 422)
    assert fast.answered == answered  # all of them went to FastAPI
    # an error raised by the search itself: the app's problem response
    r = post(client, {"query": "x", "created_after": "yesterday"}, h, "application/json")
    assert "ISO date" in assert_problem(r, 422)["detail"]
    assert fast.answered == answered + 1


def test_fast_searches_are_not_audited_and_denied_ones_are(
    client: TestClient, key: Any, magray_home: Path
) -> None:
    h = key("reader", "f3")
    for _ in range(3):
        assert post(client, {"query": "x"}, h, "application/json").status_code == 200
    assert fast_of(client).answered == 2
    post(client, {"query": "x"}, {"Authorization": "Bearer mgr_nope"}, "application/json")
    entries = AuditChain(chain_file(magray_home / "data")).entries()
    assert [(e.tenant, e.action, e.outcome) for e in entries] == [("-", f"POST {SEARCH}", "denied")]


def test_a_key_over_its_rate_is_429_and_a_revoked_key_401(
    make_client: AppFactory, key: Any
) -> None:
    client = make_client(server__rate=0.001, server__burst=2)
    h = key("reader", "f4")
    assert post(client, {"query": "x"}, h, "application/json").status_code == 200
    assert post(client, {"query": "x"}, h, "application/json").status_code == 200
    assert fast_of(client).answered == 1
    r = post(client, {"query": "x"}, h, "application/json")
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    admin = key("admin", "f4")
    listed = client.get("/v1/keys", headers=admin).json()
    reader = next(k for k in listed if k["role"] == "reader")
    assert client.delete(f"/v1/keys/{reader['id']}", headers=admin).status_code == 200
    assert_problem(post(client, {"query": "x"}, h, "application/json"), 401)


def test_an_unexpected_error_in_the_fast_path_is_a_500_problem(
    client: TestClient, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import magray.server.routes_memory as routes

    h = key("reader", "f5")
    post(client, {"query": "x"}, h, "application/json")

    async def broken(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(routes, "searched", broken)
    r = post(client, {"query": "x"}, h, "application/json")
    assert "request id" in assert_problem(r, 500)["detail"]
