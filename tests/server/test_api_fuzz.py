"""Property-based requests against every operation of the OpenAPI document: never a 500.

Each operation gets ``MAX_EXAMPLES`` inputs that fit its schema and as many that do not
(schemathesis; ``derandomize`` makes the examples the same on every run), then a fixed
set of hostile values in each body field, path and query parameter (NUL, lone surrogates,
huge and negative numbers, NaN, huge strings, wrong types), and hostile bodies (not JSON,
bad UTF-8, deep nesting, other content types). Every answer must be below 500, each 4xx a
problem (``application/problem+json``) with a title and a detail, and no answer may hold a
traceback. Bounded by example count, not time.

Roles and tenants, for every operation too (``ACCESS`` classifies each one as public,
read, write or admin; an operation it does not name fails): a reader's and a writer's key
get a 403 problem exactly where their role is short, for any valid input; tenant B's admin
key, with tenant A's ids (memories, task, run, conversation) in paths, task links and the
conversation an answer goes on with, gets 404 for each, and no answer to B holds A's texts
or ids.

Offline: the only LLM provider is configured with a key variable that is not set, so
``/v1/ask`` and ``/v1/runs`` may answer valid input with a 503 (the provider is
unavailable), never by starting a model; a reranked search, with no reranker installed,
too. ``/readyz`` answers 503 with its report (the provider check fails), which is its
documented answer, not a problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from starlette.testclient import TestClient

from magray.config import load_settings
from magray.server.app import create_app
from magray.server.keys import KeyStore, Role, keys_file
from tests.fakes import HashEmbedder
from tests.server.llm_servers import provider_toml

MAX_EXAMPLES = 50  # per operation and generation mode
PROBLEM = "application/problem+json"
# What may answer valid input with 502/503 here: the LLM provider (its key is not set), and
# a reranked search (no reranker is installed). Anything else over 499 is a failure.
OFFLINE = {
    "/problems/provider-key-missing",
    "/problems/provider-unavailable",
    "/problems/provider-error",
    "/problems/model-unavailable",
}
# Strings a careless or hostile client sends: empty, blank, NUL, a lone surrogate (JSON can
# carry one; UTF-8 cannot), bidi and control characters, paths, SQL and FTS syntax, dates
# off the calendar and at its ends, long and multi-byte ones.
STRINGS: list[Any] = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\u202egnp.exe",
    "\n",
    "acme\n",
    "\x1b[2J\x85\x7f",
    "../../etc/passwd",
    "'; DROP TABLE records; --",
    '" NEAR( * ^ -',
    "%s%n%x",
    "2026-13-45",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "é" * 70_000,
    "x" * 250_000,
]
VALUES: list[Any] = [
    *STRINGS,
    None,
    True,
    -1,
    0,
    2**63,
    -(2**63) - 1,
    10**30,
    1.5,
    float("nan"),
    float("inf"),
    [],
    [None],
    [""],
    ["\x00"],
    [["x"]],
    ["x"] * 1_001,
    {"a": 1},
]
# Path segments and query values, as they arrive percent-encoded.
SEGMENTS = ["%00", "%ff", "%ED%A0%80", "%25", "_", "..", "%20", "a" * 5_000, "%0A", "caf%C3%A9"]
QUERY_VALUES = ["", " ", "\x00", "\ud800", "-1", "1e3", "99999999999999999999999", "true", "x"]
RAW_BODIES: list[tuple[bytes, str]] = [
    (b"", "application/json"),
    (b"{", "application/json"),
    (b'{"a": 1,}', "application/json"),
    (b'{"text": "\xff\xfe"}', "application/json"),
    (b"null", "application/json"),
    (b"[]", "application/json"),
    (b'"x"', "application/json"),
    (b"NaN", "application/json"),
    (b"1" + b"0" * 5_000, "application/json"),
    (b"[" * 50_000 + b"]" * 50_000, "application/json"),
    (b'{"a": 1}', "text/plain"),
    (b"a=1", "application/x-www-form-urlencoded"),
    (b"--x\r\n", "multipart/form-data; boundary=x"),
    (b"--x\r\n", "multipart/form-data"),
    (b"\x00\x01\x02", "application/octet-stream"),
]


@pytest.fixture
def served(magray_home: Path) -> Iterator[tuple[Any, dict[str, str]]]:
    """The app over a temp home (hash embedder, no rate limit) and an admin key's header."""
    (magray_home / "config.toml").write_text(provider_toml("http://127.0.0.1:9"), "utf-8")
    store = KeyStore(keys_file(load_settings().paths.data_dir))
    _, secret = store.create(Role.ADMIN, "fuzz")
    app = create_app(
        load_settings().with_overrides({"server.rate": 1e6, "server.burst": 10**6}),
        embedder=HashEmbedder(),
    )
    yield app, {"Authorization": f"Bearer {secret}"}


def _header(r: Any, name: str) -> str:
    value = r.headers.get(name, "")
    return str(value[0] if isinstance(value, list) and value else value or "")


def check(r: Any, method: str, path: str, what: str) -> None:
    """The answer to any request: no traceback, no 500, each error a problem."""
    status = int(r.status_code)
    text = r.text
    where = f"{method} {path} ({what}) → {status}: {text[:400]}"
    assert "Traceback" not in text, where
    if path == "/readyz":
        assert status in (200, 503), where
        return
    if status < 400 or method == "HEAD":
        return
    assert _header(r, "content-type") == PROBLEM, where
    problem = json.loads(text)
    assert status < 500 or (status in (502, 503) and problem["type"] in OFFLINE), where
    assert problem["status"] == status, where
    assert str(problem["title"]).strip() and str(problem["detail"]).strip(), where
    assert str(problem["detail"]).endswith("."), where  # a sentence, not a fragment


def _pin_provider(case: Any) -> Any:
    """Generated input never names the embedded local model's provider: it would load it."""
    if isinstance(case.body, dict) and case.body.get("provider") == "local":
        case.body["provider"] = "oa"
    return case


def _fuzz(operation: Any, mode: GenerationMode, headers: dict[str, str], seen: Any) -> None:
    """``MAX_EXAMPLES`` generated requests to ``operation``, each answer checked."""
    strategy = operation.as_strategy(generation_mode=mode).map(_pin_provider)

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any) -> None:
        r = case.call(headers=headers)
        seen.setdefault(case.operation.label, set()).add(r.status_code)
        what = f"{mode.value}: body={case.body!r:.200} query={case.query!r:.200}"
        check(r, case.method, case.operation.path, what)

    send()


def test_generated_input_to_every_operation(served: tuple[Any, dict[str, str]]) -> None:
    app, headers = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    seen: dict[str, set[int]] = {}
    with TestClient(app):  # its lifespan: the runs and the tenants are closed at the end
        for operation in operations:
            _fuzz(operation, GenerationMode.POSITIVE, headers, seen)
            if operation.path not in ("/healthz", "/readyz", "/metrics"):  # nothing to spoil
                _fuzz(operation, GenerationMode.NEGATIVE, headers, seen)
    assert len(seen) == len(operations)
    # the examples reach the routes' work, not only their validation
    assert 201 in seen["POST /v1/memories"] and 200 in seen["POST /v1/memories/search"]


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    out: dict[str, Any] = spec
    for part in ref.lstrip("#/").split("/"):
        out = out[part]
    return out


def _valid(schema: dict[str, Any]) -> Any:
    """A small value that fits ``schema`` (the base a hostile value replaces one field of)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _valid(next(s for s in schema["anyOf"] if s.get("type") != "null"))
    kind = schema.get("type")
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 0.5))
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return "fuzz"


def _json_fields(
    spec: dict[str, Any], operation: dict[str, Any]
) -> tuple[dict[str, Any], list[str]] | None:
    """(a valid body, its field names) when ``operation`` takes a JSON body."""
    content = (operation.get("requestBody") or {}).get("content") or {}
    if "application/json" not in content:
        return None
    schema = _resolve(spec, content["application/json"]["schema"])
    props = {name: _resolve(spec, s) for name, s in schema.get("properties", {}).items()}
    base = {name: _valid(props[name]) for name in schema.get("required", [])}
    return base, list(props)


def _url(path: str, segment: str) -> str:
    return "/".join(segment if part.startswith("{") else part for part in path.split("/"))


def _hostile(spec: dict[str, Any], path: str, operation: dict[str, Any]) -> Iterator[Any]:
    """(what, url, request keywords) of each hostile request to one operation."""
    url = _url(path, "fuzz")
    params = operation.get("parameters", [])
    if any(p["in"] == "path" for p in params):
        for segment in SEGMENTS:
            yield f"path {segment[:20]!r}", _url(path, segment), {}
    for p in (p for p in params if p["in"] == "query"):
        for value in QUERY_VALUES:
            query = quote(value, errors="surrogatepass")
            yield f"query {p['name']}={value!r}", f"{url}?{p['name']}={query}", {}
    fields = _json_fields(spec, operation)
    if fields is None:
        return
    base, names = fields
    as_json = {"content-type": "application/json"}
    for name in names:
        for value in VALUES:
            body = json.dumps({**base, name: value}).encode()
            yield f"{name}={value!r:.40}", url, {"content": body, "headers": as_json}
        if name in base:
            missing = {k: v for k, v in base.items() if k != name}
            yield f"no {name}", url, {"json": missing}
    for raw, content_type in RAW_BODIES:
        kw = {"content": raw, "headers": {"content-type": content_type}}
        yield f"body {raw[:20]!r} as {content_type}", url, kw


def test_hostile_values_in_every_field_parameter_and_body(
    served: tuple[Any, dict[str, str]],
) -> None:
    app, headers = served
    sent = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        spec = client.get("/openapi.json").json()
        for path, methods in spec["paths"].items():
            for method, operation in methods.items():
                for what, url, kw in _hostile(spec, path, operation):
                    kw["headers"] = {**headers, **kw.get("headers", {})}
                    r = client.request(method.upper(), url, **kw)
                    check(r, method.upper(), path, what)
                    sent += 1
    assert sent > 1_500


def test_hostile_uploads(served: tuple[Any, dict[str, str]]) -> None:
    app, headers = served
    # multipart headers are UTF-8: no lone surrogate in a file name
    names = [s for s in STRINGS if len(s) < 1_000 and s != "\ud800"] + ["é" * 150 + ".md"]
    with TestClient(app, raise_server_exceptions=False) as client:
        for name in names:
            for data in (b"# Notes\n\nSome text.\n", b"\x00\xff" * 100, b""):
                files = [("files", (name, data, "text/plain"))]
                r = client.post("/v1/ingest", files=files, headers=headers)
                check(r, "POST", "/v1/ingest", f"file {name[:20]!r} of {data[:8]!r}")
        for field in ("layer", "project"):
            for value in STRINGS:
                r = client.post(
                    "/v1/ingest",
                    files=[("files", ("a.md", b"text\n", "text/plain"))],
                    data={field: value.replace("\ud800", "?")},  # a form cannot carry one
                    headers=headers,
                )
                check(r, "POST", "/v1/ingest", f"{field}={value[:20]!r}")


def test_json_nested_too_deep_in_a_search_is_a_400(served: tuple[Any, dict[str, str]]) -> None:
    app, headers = served
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.post(
            "/v1/memories/search",
            content=b"[" * 50_000 + b"]" * 50_000,
            headers={**headers, "content-type": "application/json"},
        )
    check(r, "POST", "/v1/memories/search", "deep nesting")


# -- roles and tenants ---------------------------------------------------------------------
# Who may call each operation: "public" (no key: the probes), "read" (a reader),
# "write" (a writer: it changes the tenant's data, or asks the LLM, whose answer is
# remembered), "admin" (an admin only: the server's keys, tenants, metrics and audit,
# backups, agent runs). Every operation of the OpenAPI document must be here: a new route
# fails the tests until it is classified.
ACCESS = {
    "GET /healthz": "public",
    "GET /metrics": "admin",  # names every tenant
    "GET /readyz": "public",
    "GET /v1/memories": "read",
    "POST /v1/memories/search": "read",  # a query in a body: a POST that changes nothing
    "GET /v1/memories/stats": "read",
    "GET /v1/memories/verify": "read",
    "GET /v1/memories/export": "read",
    "GET /v1/memories/{id}": "read",
    "GET /v1/models": "read",
    "GET /v1/providers": "read",
    "GET /v1/usage": "read",
    "GET /v1/tasks": "read",
    "GET /v1/tasks/{id}": "read",
    "POST /v1/ask": "write",
    "POST /v1/ingest": "write",
    "POST /v1/memories": "write",
    "POST /v1/memories/batch": "write",
    "POST /v1/memories/expire": "write",
    "POST /v1/memories/promote": "write",
    "DELETE /v1/memories/{id}": "write",
    "POST /v1/tasks": "write",
    "DELETE /v1/tasks/{id}": "write",
    "POST /v1/tasks/{id}/done": "write",
    "GET /v1/audit": "admin",
    "GET /v1/audit/verify": "admin",
    "GET /v1/keys": "admin",
    "POST /v1/keys": "admin",
    "DELETE /v1/keys/{id}": "admin",
    "GET /v1/tenants": "admin",
    "POST /v1/memories/backup": "admin",
    "POST /v1/runs": "admin",
    "GET /v1/runs/{id}": "admin",
    "POST /v1/runs/{id}/approve": "admin",
    "GET /v1/runs/{id}/events": "admin",
}
NEEDS = {"read": Role.READER, "write": Role.WRITER, "admin": Role.ADMIN}
ACCESS_EXAMPLES = 6  # per operation and key: each answer is decided by the key, not the input


def _operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _problem(r: Any, status: int, where: str) -> None:
    assert r.status_code == status, where
    assert _header(r, "content-type") == PROBLEM, where
    problem = json.loads(r.text)
    assert problem["status"] == status and str(problem["detail"]).strip(), where


def test_every_operation_is_classified_read_write_admin_or_public(
    served: tuple[Any, dict[str, str]],
) -> None:
    app, _ = served
    labels = {operation.label for operation in _operations(app)}
    assert labels - ACCESS.keys() == set(), "classify the new routes in ACCESS"
    assert ACCESS.keys() - labels == set(), "ACCESS names routes the API no longer has"
    # a GET changes nothing: only a mistake would classify one "write"
    assert not [label for label in labels if label.startswith("GET ") and ACCESS[label] == "write"]


def _each(strategy: Any, test: Any) -> None:
    """``test`` on ``ACCESS_EXAMPLES`` examples of ``strategy`` (the same on every run)."""
    settings(
        max_examples=ACCESS_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(drawn=strategy)(test))()


def _role_checked(operation: Any, role: Role, headers: dict[str, str]) -> None:
    needed = ACCESS[operation.label]
    denied = needed != "public" and not role.allows(NEEDS[needed])

    def send(drawn: Any) -> None:
        case = _pin_provider(drawn)
        r = case.call(headers=headers)
        where = f"{role} {case.operation.label} body={case.body!r:.200} → {r.text[:300]}"
        if denied:
            _problem(r, 403, where)
        else:
            assert r.status_code != 403, where
            check(r, case.method, case.operation.path, where)

    _each(operation.as_strategy(generation_mode=GenerationMode.POSITIVE), send)


@pytest.mark.parametrize("role", [Role.READER, Role.WRITER])
def test_a_key_gets_403_exactly_where_its_role_is_short(
    served: tuple[Any, dict[str, str]], role: Role
) -> None:
    """For any valid input: 403 (a problem) where the operation needs more than ``role``,
    never 403 (nor a 500) where ``role`` is enough."""
    app, _ = served
    store = KeyStore(keys_file(load_settings().paths.data_dir))
    _, secret = store.create(role, "fuzz")
    with TestClient(app):
        for operation in _operations(app):
            _role_checked(operation, role, {"Authorization": f"Bearer {secret}"})


SECRET = "qzxv"  # in every text of tenant A: never in an answer to tenant B


def _seed_conversation(app: Any, tenant: str) -> str:
    """A conversation of ``tenant`` (its log written directly: no LLM answers here); its id."""
    from magray.agent.conversations import Turn

    opened = app.fastapi.state.services.tenants.get(tenant)
    cid = f"conv-{SECRET}-{tenant}"
    turn = Turn(cid, 0.0, f"q {SECRET}", f"a {SECRET}", "oa", "m", 1, 1, 1.0, (), "stop")
    opened.llm(lambda: opened.runtime.conversations.record(turn)).result()
    return cid


def _seed_tenant_a(client: Any, headers: dict[str, str]) -> list[str]:
    """Tenant A's memories, task, run and conversation; their ids (and prefixes of them)."""
    items = [
        {"text": f"zebra quartz note {i} {SECRET}{i}", "tags": ["shared"], "project": "p"}
        for i in range(6)
    ]
    r = client.post("/v1/memories/batch", json={"items": items}, headers=headers)
    assert r.status_code == 201, r.text
    ids = [x["id"] for x in r.json()["results"]]
    r = client.post(
        "/v1/tasks", json={"title": f"task {SECRET}", "memory": ids[:1]}, headers=headers
    )
    assert r.status_code == 201, r.text
    ids.append(r.json()["id"])
    r = client.post("/v1/runs", json={"goal": f"goal {SECRET}", "dry_run": True}, headers=headers)
    assert r.status_code == 202, r.text
    ids.append(r.json()["id"])
    ids.append(_seed_conversation(client.app, "tenant-a"))
    return ids + [i[:6] for i in ids]


def test_a_tenant_never_reaches_another_tenants_data(
    served: tuple[Any, dict[str, str]],
) -> None:
    """Tenant B's admin key, with valid input to every operation and tenant A's ids in its
    paths and bodies: each id of A is a 404 in B, and no answer holds A's texts or ids
    (beyond what B sent)."""
    app, _ = served
    store = KeyStore(keys_file(load_settings().paths.data_dir))
    in_a = {"Authorization": f"Bearer {store.create(Role.ADMIN, 'tenant-a')[1]}"}
    in_b = {"Authorization": f"Bearer {store.create(Role.ADMIN, 'tenant-b')[1]}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        a_ids = _seed_tenant_a(client, in_a)
        b_text = {"text": "zebra quartz note in b", "tags": ["shared"], "project": "p"}
        assert client.post("/v1/memories", json=b_text, headers=in_b).status_code == 201
        backup = client.post("/v1/memories/backup", headers=in_b).json()
        assert backup["records"] == 1, backup  # B's one record, none of A's
        b_dir = Path(load_settings().paths.data_dir) / "tenants" / "tenant-b"
        files = [p for p in (b_dir / "backups" / backup["name"]).rglob("*") if p.is_file()]
        assert files and not [p for p in files if SECRET.encode() in p.read_bytes()]
        full_ids = [i for i in a_ids if len(i) > 6]
        for operation in _operations(app):
            if ACCESS[operation.label] != "public":
                _tenant_checked(operation, in_b, a_ids, full_ids)


def _tenant_checked(
    operation: Any, headers: dict[str, str], a_ids: list[str], full_ids: list[str]
) -> None:
    def send(drawn: tuple[Any, str, str | None]) -> None:
        case, a_id, query = drawn
        _pin_provider(case)
        if "id" in case.path_parameters:
            case.path_parameters["id"] = a_id
        if isinstance(case.body, dict):
            for field in ("depends_on", "memory"):  # a task's links to A's ids
                if field in case.body:
                    case.body[field] = [a_id]
            if case.operation.label == "POST /v1/ask":  # a conversation to go on with
                case.body["conversation"] = a_id
            if query is not None and "query" in case.body:
                case.body["query"] = query
        r = case.call(headers=headers)
        sent = json.dumps([case.body, case.query, case.path_parameters], default=str)
        where = f"{case.operation.label} sent={sent:.300} → {r.status_code}: {r.text[:300]}"
        check(r, case.method, case.operation.path, where)
        if "id" in case.path_parameters:
            _problem(r, 404, where)
        if isinstance(case.body, dict) and any(
            case.body.get(field) for field in ("depends_on", "memory", "conversation")
        ):
            _problem(r, 404, where)
        leaked = [s for s in [SECRET, *full_ids] if s in r.text and s not in sent]
        assert not leaked, where

    _each(
        st.tuples(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            st.sampled_from(a_ids),
            st.sampled_from(["zebra quartz", f"note {SECRET}", None]),
        ),
        send,
    )
