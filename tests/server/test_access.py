"""401, 403, 413, 422, 429 and 503: each with a problem body that says what to do."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from magray.cli.main import app as cli
from tests.server.conftest import AppFactory

PROBLEM = {"type", "title", "status", "detail"}


def assert_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    data: dict[str, Any] = r.json()
    assert set(data) >= PROBLEM and data["status"] == status
    assert data["detail"].endswith(".") and len(data["detail"]) > 20
    return data


def test_no_key_and_bad_key_are_401(client: TestClient) -> None:
    r = client.post("/v1/memories/search", json={"query": "x"})
    assert "magray auth create-key" in assert_problem(r, 401)["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    bad = client.get("/v1/memories", headers={"Authorization": "Bearer mgr_nope"})
    assert "unknown or revoked" in assert_problem(bad, 401)["detail"]
    basic = client.get("/v1/memories", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert "'Basic' scheme" in assert_problem(basic, 401)["detail"]
    assert "Bearer <key>" in basic.json()["detail"]


def test_reader_that_writes_is_403(client: TestClient, key: Any) -> None:
    reader = key("reader")
    assert client.get("/v1/memories", headers=reader).status_code == 200
    r = client.post("/v1/memories", json={"text": "hello"}, headers=reader)
    assert "role reader" in assert_problem(r, 403)["detail"]
    writer = key("writer")
    backup = client.post("/v1/memories/backup", headers=writer)
    assert "needs admin" in assert_problem(backup, 403)["detail"]


def test_revoked_key_is_401(make_client: AppFactory) -> None:
    runner = CliRunner()
    empty = runner.invoke(cli, ["auth", "list-keys"])
    assert empty.exit_code == 0 and "no API keys yet" in empty.output
    assert json.loads(runner.invoke(cli, ["auth", "list-keys", "--json"]).output) == []
    args = ["auth", "create-key", "--role", "reader", "--tenant", "t1", "--json"]
    made = runner.invoke(cli, args)
    assert made.exit_code == 0, made.output

    data = json.loads(made.output)
    assert set(data) == {"id", "key", "role", "tenant"} and data["tenant"] == "t1"
    listed = runner.invoke(cli, ["auth", "list-keys", "--json"])
    assert data["key"] not in listed.output and data["id"] in listed.output
    assert runner.invoke(cli, ["auth", "revoke-key", data["id"]]).exit_code == 0
    client = make_client()
    r = client.get("/v1/memories", headers={"Authorization": f"Bearer {data['key']}"})
    assert_problem(r, 401)
    again = runner.invoke(cli, ["auth", "revoke-key", data["id"]])
    assert again.exit_code == 3 and "no active key" in again.output


def test_bad_role_and_tenant_are_one_line(make_client: AppFactory) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["auth", "create-key", "--role", "root"])
    assert r.exit_code == 2 and "admin, writer or reader" in r.output
    r = runner.invoke(cli, ["auth", "create-key", "--role", "admin", "--tenant", "../x"])
    assert r.exit_code == 2 and "invalid tenant" in r.output


def test_auth_off_lets_loopback_in_without_a_key(make_client: AppFactory) -> None:
    client = make_client(server__auth="off")
    loopback = TestClient(client.app, client=("127.0.0.1", 50000))
    with loopback:
        assert loopback.post("/v1/memories", json={"text": "hi"}).status_code == 201
    # a remote client still needs a key, and "on" is the default
    assert_problem(client.get("/v1/memories"), 401)


def test_malformed_input_is_422(client: TestClient, key: Any) -> None:
    h = key("writer")
    r = client.post("/v1/memories", json={"text": "x", "importance": 7}, headers=h)
    data = assert_problem(r, 422)
    assert data["detail"].startswith("importance:") and data["errors"][0]["loc"][-1] == "importance"
    broken = client.post(
        "/v1/memories", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert_problem(broken, 422)
    unknown = client.post("/v1/memories", json={"text": "x", "colour": "red"}, headers=h)
    assert "colour" in assert_problem(unknown, 422)["detail"]
    date = client.post(
        "/v1/memories/search", json={"query": "x", "created_after": "yesterday"}, headers=h
    )
    assert "ISO date" in assert_problem(date, 422)["detail"]


def test_body_over_the_limit_is_413(make_client: AppFactory, key: Any) -> None:
    client = make_client(server__max_body_mb=0.001)  # 1,048 bytes
    h = key("writer")
    r = client.post("/v1/memories", json={"text": "x" * 5000}, headers=h)
    assert "more than the limit" in assert_problem(r, 413)["detail"]

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"x" * 500

    streamed = client.post(
        "/v1/memories", content=chunks(), headers={**h, "content-type": "application/json"}
    )
    assert_problem(streamed, 413)
    assert client.post("/v1/memories", json={"text": "small"}, headers=h).status_code == 201


def test_rate_limit_is_429_with_retry_after(make_client: AppFactory, key: Any) -> None:
    client = make_client(server__rate=0.001, server__burst=2)
    h = key("reader")
    assert client.get("/v1/memories", headers=h).status_code == 200
    assert client.get("/v1/memories", headers=h).status_code == 200
    r = client.get("/v1/memories", headers=h)
    assert_problem(r, 429)
    assert int(r.headers["retry-after"]) >= 1
    assert client.get("/v1/memories", headers=key("reader")).status_code == 200  # per key


def test_an_empty_bearer_key_is_named_as_empty(client: TestClient) -> None:
    r = client.get("/v1/memories", headers={"Authorization": "Bearer "})
    data = assert_problem(r, 401)
    assert data["detail"] == (
        "the Authorization header has no key after 'Bearer'; send the API key there."
    )


def test_rate_limit_detail_names_who_sent_too_much(make_client: AppFactory, key: Any) -> None:
    """A key-less loopback client (server.auth off) is told "this client", not "this key"."""
    client = make_client(server__rate=1, server__burst=1, server__auth="off")
    h = key("reader")
    client.get("/v1/memories", headers=h)
    keyed = assert_problem(client.get("/v1/memories", headers=h), 429)["detail"]
    assert keyed.startswith("this key sent more than 1 request per second (server.rate);")
    with TestClient(client.app, client=("127.0.0.1", 50000)) as loopback:
        loopback.get("/v1/memories")
        keyless = assert_problem(loopback.get("/v1/memories"), 429)["detail"]
    assert keyless.startswith("this client sent more than 1 request per second")


def test_full_queue_is_503_with_retry_after(make_client: AppFactory, key: Any) -> None:
    """One slot, no queue: while one request holds the slot, the next is turned away."""
    from tests.server.blocking import BlockingEmbedder

    embedder = BlockingEmbedder()
    client = make_client(embedder=embedder, server__max_concurrency=1, server__queue_size=0)
    h = key("writer")
    first: dict[str, Any] = {}

    def slow() -> None:
        first["r"] = client.post("/v1/memories", json={"text": "held"}, headers=h)

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert embedder.entered.wait(120), "the first request never reached the embedder"
        r = client.get("/v1/memories", headers=h)
        assert "queue is full" in assert_problem(r, 503)["detail"]
        assert r.headers["retry-after"] == "1"
        assert client.get("/healthz").status_code == 200  # health is never queued
    finally:
        embedder.release.set()
        thread.join()
    assert first["r"].status_code == 201
    assert client.get("/v1/memories", headers=h).status_code == 200


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/v1/memories"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/healthz"]["get"]
    ask = doc["paths"]["/v1/ask"]["post"]["responses"]["200"]["content"]
    assert set(ask) == {"application/json", "text/event-stream"}


def test_a_client_sending_bad_keys_is_throttled_not_logged_forever(
    make_client: AppFactory, key: Any, magray_home: Any
) -> None:
    from magray.observability.audit_chain import AuditChain, chain_file

    client = make_client(server__rate=0.001, server__burst=2)
    bad = {"Authorization": "Bearer mgr_guess"}
    assert client.get("/v1/memories", headers=bad).status_code == 401
    assert client.get("/v1/memories").status_code == 401
    r = client.get("/v1/memories", headers=bad)
    assert "without a valid API key" in assert_problem(r, 429)["detail"]
    assert int(r.headers["retry-after"]) >= 1
    denied = AuditChain(chain_file(magray_home / "data")).entries()
    assert [e.outcome for e in denied] == ["denied", "denied"]
    assert client.get("/v1/memories", headers=key("reader")).status_code == 200


def test_key_lookups_are_cached_until_the_key_store_changes(
    make_client: AppFactory, key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.server.keys import KeyStore

    checks: list[str] = []
    real = KeyStore.check

    def counted(self: KeyStore, secret: str) -> Any:
        checks.append(secret)
        return real(self, secret)

    monkeypatch.setattr(KeyStore, "check", counted)
    client = make_client()
    reader = key("reader", "cache")
    for _ in range(3):
        assert client.get("/v1/memories", headers=reader).status_code == 200
    assert len(checks) == 1  # one key-store query, then the cache
    # A change to the key store by anyone (here a new key, as `magray auth create-key`
    # from another process would make) drops the cache: the next request looks again.
    key("writer", "other")
    assert client.get("/v1/memories", headers=reader).status_code == 200
    assert len(checks) == 2


def test_a_key_revoked_elsewhere_stops_at_the_next_request(
    make_client: AppFactory, key: Any
) -> None:
    from magray.config import load_settings
    from magray.server.keys import KeyStore, keys_file

    client = make_client()
    reader = key("reader", "rev")
    assert client.get("/v1/memories", headers=reader).status_code == 200  # cached now
    store = KeyStore(keys_file(load_settings().paths.data_dir))
    (made,) = [k for k in store.list() if k.tenant == "rev"]
    store.revoke(made.id)  # its own connection, as the CLI or another worker would
    r = client.get("/v1/memories", headers=reader)
    assert "unknown or revoked" in assert_problem(r, 401)["detail"]
