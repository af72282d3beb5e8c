"""The dashboard's parts without a browser: CSRF tokens, origins, the metrics sampler, the
charts and the in-process API client (against the real application)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from magray.config import load_settings
from magray.observability.metrics import Metrics
from magray.server.app import create_app
from magray.server.keys import KeyStore, Role, keys_file
from magray.server.ui import session
from magray.server.ui.api import Api
from magray.server.ui.pages_health import spark
from magray.server.ui.sampler import Sampler, parse
from tests.fakes import HashEmbedder


def request(headers: dict[str, str], scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request(
        {
            "type": "http",
            "scheme": scheme,
            "headers": raw,
            "path": "/ui/memory",
            "query_string": b"",
            "server": ("h", 80),
        }
    )


def test_csrf_tokens_differ_per_key_and_are_stable() -> None:
    a, b = session.csrf_token("key-a"), session.csrf_token("key-b")
    assert a != b and a == session.csrf_token("key-a") and "key-a" not in a


def test_origins_of_other_sites_are_refused() -> None:
    assert session.same_origin(request({"host": "127.0.0.1:8765"}))
    assert session.same_origin(request({"host": "h:1", "origin": "http://h:1"}))
    assert not session.same_origin(request({"host": "h:1", "origin": "https://evil.example"}))
    assert not session.same_origin(request({"host": "h:1", "origin": "null"}))


def test_cookies_are_secure_except_plain_http_to_another_host() -> None:
    assert session.secure_cookie(request({"host": "127.0.0.1:8765"}))
    assert session.secure_cookie(request({"host": "localhost:8765"}))
    assert session.secure_cookie(request({"host": "example.org"}, scheme="https"))
    assert not session.secure_cookie(request({"host": "example.org"}))


def test_the_sampler_reads_counts_from_the_prometheus_text() -> None:
    metrics = Metrics()
    metrics.requests.labels("GET", "/v1/memories", "200").inc(3)
    metrics.recall_latency.labels("t").observe(0.02)
    metrics.recall_latency.labels("t").observe(0.04)
    first = parse(metrics.render().decode())
    assert first.requests == 3 and first.recall_count == 2
    assert abs(first.recall_sum - 0.06) < 1e-9
    sampler = Sampler(metrics.render)
    sampler.min_gap = 0.0
    sampler.sample()
    metrics.requests.labels("GET", "/v1/memories", "200").inc(5)
    metrics.recall_latency.labels("t").observe(0.01)
    (point,) = sampler.points("t")
    assert point.request_rate > 0
    assert point.recall_ms is not None and abs(point.recall_ms - 10.0) < 1e-6


def test_the_totals_shown_are_current_between_samples() -> None:
    # a page drawn just after a sample (the charts keep their spacing) still counts the
    # recalls of that last moment
    metrics = Metrics()
    sampler = Sampler(metrics.render)
    sampler.min_gap = 3600.0
    sampler.sample()
    metrics.recall_latency.labels("t").observe(0.01)
    sampler.points("t")  # within min_gap: no new sample
    assert sampler.samples[-1].recall_count == 0
    assert sampler.current().recall_count == 1
    assert len(sampler.samples) == 1


def test_spark_scales_into_its_box_and_skips_gaps() -> None:
    chart = spark([1.0, None, 4.0], [0.0, 5.0, 10.0])
    assert chart["points"] == "0.0,61.0 600.0,4.0" and chart["last"] == 4.0
    assert spark([None], [0.0])["points"] == ""


def test_the_api_client_goes_through_auth_and_tenants(magray_home: Any) -> None:
    settings = load_settings()
    app = create_app(settings, embedder=HashEmbedder())
    store = KeyStore(keys_file(settings.paths.data_dir))
    _, acme = store.create(Role.WRITER, "acme")
    _, reader = store.create(Role.READER, "acme")
    _, globex = store.create(Role.WRITER, "globex")

    async def scenario() -> None:
        made = await Api(app, acme, ("127.0.0.1", 1)).post("/v1/memories", {"text": "acme plan"})
        assert made.status == 201
        rid = made.json()["id"]
        assert (await Api(app, reader, ("127.0.0.1", 1)).get(f"/v1/memories/{rid}")).ok
        denied = await Api(app, reader, ("127.0.0.1", 1)).delete(f"/v1/memories/{rid}")
        assert denied.status == 403 and "role" in denied.problem()
        other = await Api(app, globex, ("127.0.0.1", 1)).get(f"/v1/memories/{rid}")
        assert other.status == 404
        nobody = await Api(app, None, ("127.0.0.1", 1)).get("/v1/memories")
        assert nobody.status == 401

    asyncio.run(scenario())
    app.fastapi.state.services.tenants.close()


def test_dashboard_forms_over_the_body_limit_are_refused(magray_home: Any) -> None:
    from starlette.testclient import TestClient

    app = create_app(load_settings(), embedder=HashEmbedder())
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        big = client.post(
            "/ui/login",
            content=b"k=" + b"x" * (3 * 1024 * 1024),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert big.status_code == 413 and "too large" in big.text
        small = client.post("/ui/login", data={"key": "nope"})
        assert small.status_code == 401 and "unknown or revoked" in small.text


def test_a_search_with_a_k_that_is_not_a_number_says_so(magray_home: Any) -> None:
    from starlette.testclient import TestClient

    settings = load_settings()
    _, key = KeyStore(keys_file(settings.paths.data_dir)).create(Role.READER, "default")
    app = create_app(settings, embedder=HashEmbedder())
    # https: the sign-in cookie is Secure on loopback, and the client honours that
    with TestClient(app, base_url="https://127.0.0.1:8765") as client:
        assert client.post("/ui/login", data={"key": key}, follow_redirects=False).is_redirect
        for k, said in (
            ("abc", "k must be an integer, not a string"),
            ("1e3", "k must be an integer, not a string"),
            ("²", "k must be an integer, not a string"),  # isdigit() let it through: a 500
            ("-1", "k: Input should be greater than or equal to 1"),
            ("0", "k: Input should be greater than or equal to 1"),
        ):
            page = client.get("/ui/memory/search", params={"query": "x", "k": k})
            assert page.status_code == 200 and said in page.text, (k, page.text)
        assert client.get("/ui/memory/search", params={"query": "x", "k": " 5 "}).status_code == 200
