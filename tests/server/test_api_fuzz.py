"""Property-based requests against every operation of the OpenAPI document: never a 500.

Each operation gets ``MAX_EXAMPLES`` inputs that fit its schema and as many that do not
(schemathesis; ``derandomize`` makes the examples the same on every run), then a fixed
set of hostile values in each body field, path and query parameter (NUL, lone surrogates,
huge and negative numbers, NaN, huge strings, wrong types), and hostile bodies (not JSON,
bad UTF-8, deep nesting, other content types). Every answer must be below 500, each 4xx a
problem (``application/problem+json``) with a title and a detail, and no answer may hold a
traceback. Bounded by example count, not time.

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
