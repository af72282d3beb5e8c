"""Requests a careless or hostile client sends: each is a 4xx problem that says what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

PROBLEM = "application/problem+json"


@pytest.fixture
def h(key: Any) -> dict[str, str]:
    return dict(key("admin"))


def _problem(r: Any, status: int, *needles: str) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == PROBLEM
    detail = str(r.json()["detail"])
    assert detail.endswith("."), detail
    for needle in needles:
        assert needle in detail, detail
    return detail


def test_a_body_that_is_not_json_text(client: TestClient, h: dict[str, str]) -> None:
    bad = {**h, "content-type": "application/json"}
    r = client.post("/v1/memories", content=b'{"text": "\xff\xfe"}', headers=bad)
    _problem(r, 400, "not valid JSON", "UTF-8", "send it again")
    assert r.json()["title"] == "Malformed request"
    r = client.post("/v1/memories", content=b'{"text": "x",', headers=bad)
    _problem(r, 422, "not valid JSON", "send it again")


@pytest.mark.parametrize(
    ("content", "content_type", "needle"),
    [
        (b'{"text": "x"}', "text/plain", "sent as text/plain, not as JSON"),
        (b"text=x", "application/x-www-form-urlencoded", "not as JSON"),
        (b"", "application/json", "the body is empty"),
        (b'["x"]', "application/json", "JSON an array, not an object"),
        (b"null", "application/json", "JSON null, not an object"),
    ],
)
def test_a_body_that_is_not_a_json_object_says_what_to_send(
    client: TestClient, h: dict[str, str], content: bytes, content_type: str, needle: str
) -> None:
    # was "the body: Input should be a valid dictionary or object to extract fields from"
    r = client.post("/v1/memories", content=content, headers={**h, "content-type": content_type})
    _problem(r, 422, needle, "Content-Type: application/json")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "nests too deeply"),
        (b'{"text": "x", "importance": 1' + b"0" * 5000 + b"}", "more than 4,300 digits"),
    ],
)
def test_json_too_deep_or_a_number_too_long_is_named(
    client: TestClient, h: dict[str, str], content: bytes, needle: str
) -> None:
    # both were "the body is not valid JSON in UTF-8", which they are
    r = client.post(
        "/v1/memories", content=content, headers={**h, "content-type": "application/json"}
    )
    _problem(r, 400, needle)
    assert r.json()["title"] == "Malformed request"


def test_a_multipart_error_has_a_title_and_a_detail(client: TestClient, h: dict[str, str]) -> None:
    bad = {**h, "content-type": "multipart/form-data"}  # no boundary
    r = client.post("/v1/ingest", content=b"--x\r\n", headers=bad)
    _problem(r, 400, "Missing boundary in multipart")
    assert r.json()["title"] == "Malformed request"  # was the parser's sentence again


def test_a_form_field_where_a_file_goes_is_named(client: TestClient, h: dict[str, str]) -> None:
    r = client.post("/v1/ingest", data={"files": "notes.md"}, headers=h)
    # was "files.0: Value error, Expected UploadFile, received: <class 'str'>"
    _problem(r, 422, "files.0: is a plain form field, not a file")


def _upload(name: str, data: bytes = b"# Notes\n\nSome text to keep.\n") -> tuple[str, Any]:
    return ("files", (name, data, "text/plain"))


def test_upload_names_in_any_script_are_kept(
    client: TestClient, h: dict[str, str], magray_home: Path
) -> None:
    r = client.post("/v1/ingest", files=[_upload("notes-été 漢字.md")], headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["files"]["added"] == 1
    uploads = magray_home / "data" / "tenants" / "default" / "uploads"
    assert (uploads / "notes-été 漢字.md").is_file()


@pytest.mark.parametrize("name", ["notes.md\n", "a\tb.md", ".hidden", "-rf.md", "a\u202eb.md"])
def test_upload_names_with_control_characters_are_refused(
    client: TestClient, h: dict[str, str], name: str, magray_home: Path
) -> None:
    r = client.post("/v1/ingest", files=[_upload(name)], headers=h)
    _problem(r, 422, "invalid file name")
    uploads = magray_home / "data" / "tenants" / "default" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_an_upload_name_too_long_for_the_file_system_is_refused(
    client: TestClient, h: dict[str, str], magray_home: Path
) -> None:
    # 150 two-byte letters pass the name pattern but make a file name of 303 bytes
    # (the file system's limit is 255): this was a 500 (OSError) when the file was saved
    r = client.post("/v1/ingest", files=[_upload("é" * 150 + ".md")], headers=h)
    _problem(r, 422, "303 bytes", "shorter name")
    uploads = magray_home / "data" / "tenants" / "default" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []
    r = client.post("/v1/ingest", files=[_upload("é" * 113 + ".md")], headers=h)  # 229 bytes
    assert r.status_code == 200, r.text


def test_two_uploads_with_one_name_are_refused(
    client: TestClient, h: dict[str, str], magray_home: Path
) -> None:
    files = [_upload("a/notes.md", b"first file\n"), _upload("b/notes.md", b"second file\n")]
    r = client.post("/v1/ingest", files=files, headers=h)
    _problem(r, 422, "notes.md", "twice")
    uploads = magray_home / "data" / "tenants" / "default" / "uploads"
    assert not (uploads / "notes.md").exists()


def test_the_server_refuses_an_inverted_range_and_an_empty_tag(
    client: TestClient, key: Any
) -> None:
    h = key("reader")
    r = client.post(
        "/v1/memories/search",
        json={"query": "x", "created_after": "2026-02-01", "created_before": "2026-01-01"},
        headers=h,
    )
    assert r.status_code == 422 and "later" in r.json()["detail"], r.text
    r = client.post("/v1/memories/search", json={"query": "x", "tags": [""]}, headers=h)
    assert r.status_code == 422 and "empty" in r.json()["detail"], r.text


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_project_or_session_is_refused_not_read_as_no_filter(
    client: TestClient, key: Any, blank: str
) -> None:
    h = key("admin")
    kept = client.post("/v1/memories", json={"text": "kept", "project": "p"}, headers=h)
    assert kept.status_code in (200, 201), kept.text
    calls = [
        client.post("/v1/memories/search", json={"query": "kept", "project": blank}, headers=h),
        client.post("/v1/memories/search", json={"query": "kept", "session": blank}, headers=h),
        client.post("/v1/memories", json={"text": "x", "project": blank}, headers=h),
        client.get("/v1/memories", params={"project": blank}, headers=h),
        client.get("/v1/memories/export", params={"project": blank}, headers=h),
    ]
    for r in calls:
        assert r.status_code == 422, (r.request.url, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert "is empty; give a name, or leave it out" in r.json()["detail"]


def test_a_url_over_the_limit_is_414(client: TestClient, h: dict[str, str]) -> None:
    from magray.server.guard import MAX_URL_BYTES

    fits = client.get("/v1/memories?tag=" + "a" * (MAX_URL_BYTES - 200), headers=h)
    assert fits.status_code == 200, fits.text
    r = client.get("/v1/memories?tag=" + "a" * MAX_URL_BYTES, headers=h)
    _problem(r, 414, "more than the limit of", "POST")
    assert r.json()["type"] == "/problems/url-too-long"


def test_headers_over_the_limit_are_431(client: TestClient, h: dict[str, str]) -> None:
    """httptools takes headers of any size: the app bounds them, as a problem."""
    from magray.server.guard import MAX_HEADER_BYTES

    fits = client.get("/v1/memories", headers={**h, "x-big": "b" * (MAX_HEADER_BYTES // 2)})
    assert fits.status_code == 200, fits.text
    r = client.get("/v1/memories", headers={**h, "x-big": "b" * 100_000})
    _problem(r, 431, "more than the limit of", "fewer or shorter headers")
    assert r.json()["type"] == "/problems/headers-too-large"
    many = {f"x-h{i}": "v" for i in range(3000)}
    _problem(client.get("/v1/memories", headers={**h, **many}), 431)


def test_a_reranked_search_without_a_reranker_names_the_reranker(
    client: TestClient, h: dict[str, str]
) -> None:
    r = client.post("/v1/memories/search", json={"query": "x", "rerank": True}, headers=h)
    _problem(r, 503, "no reranker is installed")
    assert r.json()["title"] == "Model unavailable"  # was "Embedding model unavailable"


@pytest.mark.parametrize(
    ("path", "body", "accept"),
    [
        ("/v1/ask", {"question": "  \n"}, "text/event-stream"),
        ("/v1/ask", {"question": "  \n"}, "application/json"),
        ("/v1/runs", {"goal": "  \n"}, "application/json"),
    ],
)
def test_a_blank_question_or_goal_is_refused_before_any_answer(
    client: TestClient, h: dict[str, str], path: str, body: dict[str, str], accept: str
) -> None:
    # a streamed ask answered 200 with an error event, and a run started with no goal
    r = client.post(path, json=body, headers={**h, "accept": accept})
    _problem(r, 422, "is blank; give some words")
