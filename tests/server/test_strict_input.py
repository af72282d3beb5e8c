"""Strict request bodies and labels without control characters (the fuzzing's leftovers).

A JSON value of the wrong type is a 422 naming the field and the type it wants (pydantic's
lax mode read ``true`` as 1 and ``"10"`` as 10); a control character in a kind, tag, project
or session is a 422 naming the label and the character (it was stored); NUL is never text.
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.server.conftest import AppFactory
from tests.server.llm_servers import provider_toml

PROBLEM = "application/problem+json"


@pytest.fixture
def h(key: Any) -> dict[str, str]:
    return dict(key("admin"))


@pytest.fixture
def client(make_client: AppFactory, magray_home: Any) -> TestClient:
    """The app with one LLM provider, whose key is not set: a question that got past the
    checks would be a 503, never a model loaded."""
    (magray_home / "config.toml").write_text(provider_toml("http://127.0.0.1:9"), "utf-8")
    return make_client()


def _problem(r: Any, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == PROBLEM
    detail = str(r.json()["detail"])
    assert detail.endswith(".") and "\n" not in detail, detail
    for needle in needles:
        assert needle in detail, detail
    return detail


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        (
            "/v1/memories/search",
            {"query": "x", "k": True},
            "k must be an integer, not a boolean (true)",
        ),
        (
            "/v1/memories/search",
            {"query": "x", "k": "10"},
            'k must be an integer, not a string ("10")',
        ),
        (
            "/v1/memories/search",
            {"query": "x", "k": 1.5},
            "k must be an integer, not a number with a fraction (1.5)",
        ),
        (
            "/v1/memories/search",
            {"query": "x", "explain": 1},
            "explain must be true or false, not an integer (1)",
        ),
        (
            "/v1/memories/search",
            {"query": "x", "rerank": "false"},
            "rerank must be true or false, not a string",
        ),
        ("/v1/memories/search", {"query": 42}, "query must be a string, not an integer (42)"),
        (
            "/v1/memories/search",
            {"query": "x", "tags": "infra"},
            'tags must be an array, not a string ("infra")',
        ),
        (
            "/v1/memories",
            {"text": "x", "importance": True},
            "importance must be a number, not a boolean",
        ),
        (
            "/v1/memories",
            {"text": "x", "importance": "0.5"},
            "importance must be a number, not a string",
        ),
        ("/v1/memories", {"text": "x", "pin": "true"}, "pin must be true or false"),
        ("/v1/memories", {"text": "x", "kind": 7}, "kind must be a string"),
        ("/v1/memories", {"text": "x", "tags": [1]}, "tags.0 must be a string, not an integer (1)"),
        ("/v1/memories", {"text": "x", "at": 1700000000}, "at must be a string"),
        (
            "/v1/memories/batch",
            {"items": [{"text": "x"}, {"text": "y", "pin": 0}]},
            "items.1.pin must be true or false",
        ),
        ("/v1/memories/batch", {"items": [7]}, "items.0 must be an object, not an integer (7)"),
        (
            "/v1/tasks",
            {"title": "t", "priority": False},
            "priority must be an integer, not a boolean",
        ),
        ("/v1/runs", {"goal": "g", "max_steps": "3"}, "max_steps must be an integer, not a string"),
        ("/v1/runs", {"goal": "g", "read_only": "yes"}, "read_only must be true or false"),
        ("/v1/keys", {"role": "reader", "tenant": 5}, "tenant must be a string"),
        ("/v1/runs/x/approve", {"approve": 1}, "approve must be true or false, not an integer (1)"),
    ],
)
def test_a_value_of_the_wrong_json_type_is_named(
    client: TestClient, h: dict[str, str], path: str, body: Any, needle: str
) -> None:
    r = client.post(path, json=body, headers=h)
    _problem(r, 422, needle, "fix the request")
    assert r.json()["type"] == "/problems/invalid-request"


def test_json_schema_types_are_kept_an_integer_is_a_number_and_10_0_an_integer(
    client: TestClient, h: dict[str, str]
) -> None:
    r = client.post("/v1/memories", json={"text": "x", "importance": 1}, headers=h)
    assert r.status_code == 201, r.text
    as_json = {**h, "content-type": "application/json"}
    r = client.post("/v1/memories/search", content=b'{"query": "x", "k": 1.0}', headers=as_json)
    assert r.status_code == 200 and len(r.json()["hits"]) == 1, r.text
    r = client.post("/v1/tasks", json={"title": "t", "priority": 2.0}, headers=h)
    assert r.status_code == 201 and r.json()["priority"] == 2, r.text


def test_query_parameters_keep_their_string_parsing(client: TestClient, h: dict[str, str]) -> None:
    assert client.get("/v1/memories", params={"limit": "5"}, headers=h).status_code == 200
    r = client.post("/v1/memories/promote", params={"dry_run": "true"}, headers=h)
    assert r.status_code == 200 and r.json()["dry_run"] is True, r.text


def test_every_integer_of_a_body_is_the_json_schema_integer() -> None:
    """A new body field of type ``int`` would refuse ``1.0``: it must be ``schemas.Int``."""
    from magray.server import routes_runs, schemas

    bodies = [schemas.MemoryIn, schemas.BatchIn, schemas.SearchIn, schemas.AskIn]
    bodies += [schemas.TaskIn, schemas.KeyIn, routes_runs.RunIn, routes_runs.ApproveIn]
    assert {b.__name__ for b in schemas.Body.__subclasses__()} == {b.__name__ for b in bodies}
    for body in bodies:
        assert body.model_config.get("strict") is True
        for name, field in body.model_fields.items():
            if field.annotation is int:
                assert any(getattr(m, "func", None) is schemas._whole for m in field.metadata), (
                    f"{body.__name__}.{name}"
                )


LABELS = [
    ("kind", "note\x01"),
    ("tags", ["ok", "red\x1b[31m"]),
    ("project", "p\x85"),
    ("session", "s\x00"),
]


@pytest.mark.parametrize(("field", "value"), LABELS)
def test_a_control_character_in_a_label_is_a_422_and_nothing_is_stored(
    client: TestClient, h: dict[str, str], field: str, value: Any
) -> None:
    char = (value[-1] if isinstance(value, list) else value)[-1]
    if field == "tags":
        char = "\x1b"
    code = f"(U+{ord(char):04X})"
    r = client.post("/v1/memories", json={"text": "x", field: value}, headers=h)
    _problem(r, 422, "holds a control character", code, "printable text on one line")
    batch = {"items": [{"text": "fine"}, {"text": "x", field: value}]}
    r = client.post("/v1/memories/batch", json=batch, headers=h)
    assert _problem(r, 422, code).startswith("items.1: the ")
    assert client.get("/v1/memories", headers=h).json()["records"] == []
    search = {"query": "x", field: value}
    _problem(client.post("/v1/memories/search", json=search, headers=h), 422, "to filter by", code)


UNSEEN = [
    ("kind", "note\u202e", "U+202E"),
    ("tags", ["ok", "o\u200bps"], "U+200B"),
    ("project", "\u2066p\u2069", "U+2066"),
    ("session", "s\ufeff", "U+FEFF"),
]


@pytest.mark.parametrize(("field", "value", "code"), UNSEEN)
def test_a_bidi_or_zero_width_character_in_a_label_is_a_422(
    client: TestClient, h: dict[str, str], field: str, value: Any, code: str
) -> None:
    """A label that would print like another one is refused, by name and U+ code, on a
    write, in a batch and as a filter; a text keeps such characters (they are content)."""
    r = client.post("/v1/memories", json={"text": "x", field: value}, headers=h)
    _problem(r, 422, f"({code}, a bidi or zero-width control)", "remove it")
    batch = {"items": [{"text": "fine"}, {"text": "x", field: value}]}
    assert _problem(client.post("/v1/memories/batch", json=batch, headers=h), 422, code)
    assert client.get("/v1/memories", headers=h).json()["records"] == []
    search = {"query": "x", field: value}
    _problem(client.post("/v1/memories/search", json=search, headers=h), 422, "to filter by", code)
    text = "\u202bשלום\u202c and a zero\u200bwidth space"
    made = client.post("/v1/memories", json={"text": text}, headers=h)
    assert made.status_code == 201, made.text
    got = client.get(f"/v1/memories/{made.json()['id']}", headers=h)
    assert got.json()["text"] == text


def test_a_tenant_name_with_an_invisible_character_is_a_422(
    client: TestClient, h: dict[str, str]
) -> None:
    for tenant, code in (("acme\u202e", "U+202E"), ("ac\u200dme", "U+200D"), ("a\u061c", "U+061C")):
        r = client.post("/v1/keys", json={"role": "reader", "tenant": tenant}, headers=h)
        _problem(r, 422, f"(it holds {code}, which does not show)", "lower-case letters")
    assert client.post("/v1/keys", json={"role": "reader", "tenant": "acme"}, headers=h).is_success


def test_a_control_character_in_a_project_of_a_query_or_an_upload_is_a_422(
    client: TestClient, h: dict[str, str]
) -> None:
    for path in ("/v1/memories", "/v1/memories/export"):
        r = client.get(path, params={"project": "p\x1b"}, headers=h)
        _problem(r, 422, "the project to filter by 'p\\x1b'", "(U+001B)")
    upload = [("files", ("a.md", b"some text\n", "text/plain"))]
    r = client.post("/v1/ingest", files=upload, data={"project": "p\x07"}, headers=h)
    _problem(r, 422, "the project 'p\\x07' holds a control character (U+0007)")


def test_the_api_document_shows_the_labels_rule(client: TestClient) -> None:
    from magray.memory.records import LABEL_PATTERN

    spec = client.get("/openapi.json").json()
    props = spec["components"]["schemas"]["MemoryIn"]["properties"]
    assert props["kind"]["pattern"] == LABEL_PATTERN
    assert props["tags"]["items"]["pattern"] == LABEL_PATTERN
    assert props["project"]["anyOf"][0]["pattern"] == LABEL_PATTERN


def test_text_keeps_newlines_and_tabs_but_never_nul(client: TestClient, h: dict[str, str]) -> None:
    text = "first line\n\tsecond line\r\n"
    r = client.post("/v1/memories", json={"text": text}, headers=h)
    assert r.status_code == 201, r.text
    assert client.get(f"/v1/memories/{r.json()['id']}", headers=h).json()["text"] == text
    _problem(client.post("/v1/memories", json={"text": "a\x00b"}, headers=h), 422, "NUL")
    r = client.post("/v1/tasks", json={"title": "t", "notes": "a\x00b"}, headers=h)
    _problem(r, 422, "task notes contain NUL")


@pytest.mark.parametrize(
    ("path", "body", "accept"),
    [
        ("/v1/ask", {"question": "why\x00"}, "text/event-stream"),
        ("/v1/ask", {"question": "why\x00"}, "application/json"),
        ("/v1/runs", {"goal": "do\x00"}, "application/json"),
    ],
)
def test_nul_in_a_question_or_goal_is_refused_before_any_answer(
    client: TestClient, h: dict[str, str], path: str, body: dict[str, str], accept: str
) -> None:
    r = client.post(path, json=body, headers={**h, "accept": accept})
    _problem(r, 422, "contains NUL bytes")
