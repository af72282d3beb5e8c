"""/v1/memories through the ASGI app: the route contract and the CLI's JSON shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from magray.cli.main import app as cli
from tests.server.conftest import AppFactory

FACT = "The staging database listens on port 5433"


@pytest.fixture
def h(key: Any) -> dict[str, str]:
    return dict(key("admin"))


def test_add_returns_the_contract(client: TestClient, h: dict[str, str]) -> None:
    r = client.post("/v1/memories", json={"text": FACT, "layer": "insights"}, headers=h)
    assert r.status_code == 201
    data = r.json()
    assert set(data) == {"id", "layer", "created"}
    assert data["layer"] == "insights" and data["created"] is True
    again = client.post("/v1/memories", json={"text": FACT, "layer": "insights"}, headers=h)
    assert again.json() == {"id": data["id"], "layer": "insights", "created": False}


def test_get_list_delete(client: TestClient, h: dict[str, str]) -> None:
    rid = client.post("/v1/memories", json={"text": FACT, "tags": ["infra"]}, headers=h).json()[
        "id"
    ]
    got = client.get(f"/v1/memories/{rid}", headers=h).json()
    assert got["text"] == FACT and got["tags"] == ["infra"] and got["layer"] == "interact"
    listed = client.get("/v1/memories", params={"layer": ["interact"]}, headers=h).json()
    assert [r["id"] for r in listed["records"]] == [rid]
    gone = client.delete(f"/v1/memories/{rid}", headers=h)
    assert gone.json() == {"id": rid, "forgotten": True}
    missing = client.get(f"/v1/memories/{rid}", headers=h)
    assert missing.status_code == 404
    assert missing.json()["type"] == "/problems/not-found"
    assert rid in missing.json()["detail"]
    # the hint names the request that lists memories, not a command an API client cannot run
    assert missing.json()["detail"].endswith("; GET /v1/memories lists the memories.")
    assert "magray" not in missing.json()["detail"]


def test_batch_search_filters_and_explain(client: TestClient, h: dict[str, str]) -> None:
    items = [
        {"text": FACT, "layer": "insights", "tags": ["infra"], "project": "p1"},
        {"text": "Lunch is at noon on Fridays", "layer": "interact", "project": "p2"},
    ]
    r = client.post("/v1/memories/batch", json={"items": items}, headers=h)
    assert r.status_code == 201 and len(r.json()["results"]) == 2
    body = {"query": "database port", "k": 5, "layers": ["insights"], "explain": True}
    hits = client.post("/v1/memories/search", json=body, headers=h).json()
    assert hits["query"] == "database port"
    assert [x["text"] for x in hits["hits"]] == [FACT]
    assert set(hits["hits"][0]["explain"]) >= {"vector_rank", "keyword_rank", "fused_score"}
    by_project = client.post(
        "/v1/memories/search", json={"query": "noon lunch", "project": "p1"}, headers=h
    ).json()
    assert all(x["project"] == "p1" for x in by_project["hits"])
    keyword = client.post(
        "/v1/memories/search", json={"query": "Fridays", "mode": "keyword"}, headers=h
    ).json()
    assert [x["project"] for x in keyword["hits"]] == ["p2"]


def test_lifecycle_stats_verify_backup_export(client: TestClient, h: dict[str, str]) -> None:
    client.post("/v1/memories", json={"text": FACT, "pin": True}, headers=h)
    promote = client.post("/v1/memories/promote", params={"dry_run": True}, headers=h).json()
    assert promote["dry_run"] is True and "promoted" in promote and "kept" in promote
    expire = client.post("/v1/memories/expire", params={"dry_run": True}, headers=h).json()
    assert expire == {"dry_run": True, "expired": []}
    stats = client.get("/v1/memories/stats", headers=h).json()
    assert sum(row["records"] for row in stats["layers"].values()) == 1
    assert "path" not in stats
    assert client.get("/v1/memories/verify", headers=h).json()["ok"] is True
    backup = client.post("/v1/memories/backup", headers=h).json()
    assert backup["records"] == 1 and "/" not in backup["name"]
    lines = client.get("/v1/memories/export", headers=h).text.splitlines()
    assert json.loads(lines[0])["magray_export"] and json.loads(lines[1])["text"] == FACT


def test_ingest_uploaded_files(client: TestClient, h: dict[str, str], magray_home: Path) -> None:
    files = [("files", ("notes.md", b"# Deploy\n\nDeploys go out on Tuesdays.\n", "text/plain"))]
    r = client.post("/v1/ingest", files=files, data={"project": "ops"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["files"]["added"] == 1 and r.json()["project"] == "ops"
    again = client.post("/v1/ingest", files=files, data={"project": "ops"}, headers=h).json()
    assert again["files"]["unchanged"] == 1
    hits = client.post("/v1/memories/search", json={"query": "Tuesdays"}, headers=h).json()
    assert "Tuesdays" in hits["hits"][0]["text"]
    # a path in the name is reduced to its last part, inside the tenant's uploads folder
    sneaky = [("files", ("../../escape.md", b"Escaped text.\n", "text/plain"))]
    kept = client.post("/v1/ingest", files=sneaky, headers=h)
    assert kept.status_code == 200, kept.text
    uploads = magray_home / "data" / "tenants" / "default" / "uploads"
    assert (uploads / "escape.md").is_file()
    assert not (magray_home / "data" / "escape.md").exists()
    hidden = [("files", (".env", b"SECRET=1\n", "text/plain"))]
    refused = client.post("/v1/ingest", files=hidden, headers=h)
    assert refused.status_code == 422 and "invalid file name" in refused.json()["detail"]


@pytest.mark.model
def test_search_json_is_the_cli_json(
    make_client: AppFactory, key: Any, default_model_dir: Path, magray_home: Path
) -> None:
    """The real model on both sides: the API answers exactly what the CLI prints."""
    client = make_client(embedder=None)
    h = key("writer")
    client.post("/v1/memories", json={"text": FACT, "layer": "insights"}, headers=h)
    api = client.post(
        "/v1/memories/search", json={"query": "which port?", "explain": True}, headers=h
    ).json()
    runner = CliRunner()
    added = runner.invoke(cli, ["memory", "add", FACT, "--layer", "insights"])
    assert added.exit_code == 0, added.output
    out = runner.invoke(cli, ["memory", "search", "which port?", "--explain", "--json"])
    assert out.exit_code == 0, out.output
    printed = json.loads(out.output)

    def strip(data: dict[str, Any]) -> dict[str, Any]:
        hits = [{k: v for k, v in h.items() if k not in {"id", "created_at"}} for h in data["hits"]]
        return {"query": data["query"], "hits": hits}

    assert strip(api) == strip(printed)
    assert api["hits"][0]["score"] == pytest.approx(printed["hits"][0]["score"])


def test_search_renders_a_non_finite_score_as_null(
    client: TestClient, h: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import magray.views

    real = magray.views.search_json

    def with_nan(query: str, hits: Any) -> dict[str, Any]:
        data = real(query, hits)
        data["hits"][0]["score"] = float("nan")
        return data

    client.post("/v1/memories", json={"text": "the staging port is 5433"}, headers=h)
    monkeypatch.setattr(magray.views, "search_json", with_nan)
    r = client.post("/v1/memories/search", json={"query": "staging port"}, headers=h)
    assert r.status_code == 200 and r.json()["hits"][0]["score"] is None


def test_a_full_disk_is_507_and_writes_nothing(client: TestClient, h: dict[str, str]) -> None:
    assert client.post("/v1/memories", json={"text": FACT}, headers=h).status_code == 201
    services = client.app.fastapi.state.services  # type: ignore[attr-defined]
    conn = services.tenants.get("default").runtime.memory.backend.store.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
    items = [{"text": f"filler {i} " + "x" * 4000} for i in range(50)]
    try:
        r = client.post("/v1/memories/batch", json={"items": items}, headers=h)
    finally:
        conn.execute("PRAGMA max_page_count = 1073741823")
    assert r.status_code == 507
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["type"].endswith("/store-full") and problem["title"] == "Insufficient storage"
    assert "is full" in problem["detail"] and "free space" in problem["detail"]
    listed = client.get("/v1/memories", headers=h).json()["records"]
    assert [row["text"] for row in listed] == [FACT]
    assert client.post("/v1/memories", json={"text": "fits again"}, headers=h).status_code == 201
