"""/metrics parses with prometheus-client's parser, counts what was asked, and answers only
an admin key (or a key-less loopback client when ``server.auth`` is off)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from tests.server.conftest import AppFactory
from tests.server.test_access import assert_problem


def samples(client: TestClient, headers: dict[str, str]) -> dict[str, list[Any]]:
    """The families of a scrape with ``headers`` (an admin key's, or none on a key-less
    loopback client of ``server.auth = "off"``)."""
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(r.text):
        out.setdefault(family.name, []).extend(family.samples)
    return out


def value(found: dict[str, list[Any]], family: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in found.get(family, [])
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_count_requests_and_describe_the_store(client: TestClient, key: Any) -> None:
    h = key("writer", "m1")
    for i in range(3):
        client.post("/v1/memories", json={"text": f"fact number {i}"}, headers=h)
    for _ in range(2):
        client.post("/v1/memories/search", json={"query": "fact"}, headers=h)
    client.get("/v1/memories/nope", headers=h)
    client.get("/v1/memories")  # 401
    admin = key("admin", "ops")
    found = samples(client, admin)
    total = "magray_http_requests_total"
    assert value(found, "magray_http_requests", total, route="/v1/memories", status="201") == 3
    assert (
        value(found, "magray_http_requests", total, route="/v1/memories/search", status="200") == 2
    )
    assert value(found, "magray_http_requests", total, route="/v1/memories/{id}", status="404") == 1
    assert value(found, "magray_http_requests", total, route="/v1/memories", status="401") == 1
    latency = "magray_http_request_duration_seconds"
    assert value(found, latency, latency + "_count", route="/v1/memories", status="201") == 3
    recall = "magray_recall_duration_seconds"
    assert value(found, recall, recall + "_count", tenant="m1") == 2
    assert value(found, "magray_memory_records", "magray_memory_records", tenant="m1") == 3
    assert value(found, "magray_memory_bytes", "magray_memory_bytes", tenant="m1") > 0
    assert "magray_index_backlog" in found
    assert value(found, "magray_embedded_texts", "magray_embedded_texts_total") >= 5
    assert value(found, "magray_errors", "magray_errors_total", type="not-found") == 1
    # the scrape itself was not yet counted; the next one sees it
    again = samples(client, admin)
    assert value(again, "magray_http_requests", total, route="/metrics", status="200") == 1


def test_metrics_need_an_admin_key(client: TestClient, key: Any) -> None:
    """The scrape names every tenant: no key is a 401, a reader or writer a 403."""
    key("writer", "secret-tenant")
    client.post("/v1/memories", json={"text": "a fact"}, headers=key("writer", "secret-tenant"))
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = client.get("/metrics", headers=headers)
        assert_problem(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "secret-tenant" not in r.text
    for role in ("reader", "writer"):
        r = client.get("/metrics", headers=key(role, "secret-tenant"))
        assert "admin" in assert_problem(r, 403)["detail"]
        assert "secret-tenant" not in r.text
    found = samples(client, key("admin", "ops"))
    assert value(found, "magray_memory_records", "magray_memory_records", tenant="secret-tenant")
    # the probes stay open
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_metrics_answer_loopback_without_a_key_when_auth_is_off(make_client: AppFactory) -> None:
    client = make_client(server__auth="off")
    with TestClient(client.app, client=("127.0.0.1", 50000)) as loopback:
        assert "magray_http_requests" in samples(loopback, {})
    assert_problem(client.get("/metrics"), 401)  # a remote client still needs a key
