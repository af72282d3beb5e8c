"""/metrics parses with prometheus-client's parser and counts what was asked."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient


def samples(client: TestClient) -> dict[str, list[Any]]:
    r = client.get("/metrics")
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
    found = samples(client)
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
    again = samples(client)
    assert value(again, "magray_http_requests", total, route="/metrics", status="200") == 1
