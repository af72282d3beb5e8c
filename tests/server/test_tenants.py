"""Tenant A can never read, search, get, list, export or back up tenant B's records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from magray.config import load_settings

SECRET = "Tenant A's launch code is 0000-ALPHA"


def test_tenants_are_isolated(client: TestClient, key: Any, magray_home: Path) -> None:
    a, b = key("admin", "alpha"), key("admin", "beta")
    rid = client.post("/v1/memories", json={"text": SECRET}, headers=a).json()["id"]
    client.post("/v1/memories", json={"text": "Tenant B keeps notes on gardening"}, headers=b)

    # search: B finds nothing of A's, A finds its own
    found_a = client.post("/v1/memories/search", json={"query": "launch code"}, headers=a).json()
    assert [h["id"] for h in found_a["hits"]] == [rid]
    found_b = client.post("/v1/memories/search", json={"query": "launch code"}, headers=b).json()
    assert all("ALPHA" not in h["text"] for h in found_b["hits"])
    # get by id (and by prefix) and delete: 404 as if it never existed
    for path in (f"/v1/memories/{rid}", f"/v1/memories/{rid[:6]}"):
        r = client.get(path, headers=b)
        assert r.status_code == 404 and r.json()["type"] == "/problems/not-found"
    assert client.delete(f"/v1/memories/{rid}", headers=b).status_code == 404
    assert client.get(f"/v1/memories/{rid}", headers=a).status_code == 200
    # list
    listed = client.get("/v1/memories", headers=b).json()["records"]
    assert [r["text"] for r in listed] == ["Tenant B keeps notes on gardening"]
    # export
    exported = client.get("/v1/memories/export", headers=b).text
    assert "ALPHA" not in exported and "gardening" in exported
    # backup: B's backup holds one record, under B's own folder
    backup = client.post("/v1/memories/backup", headers=b).json()
    assert backup["records"] == 1
    beta_backups = magray_home / "data" / "tenants" / "beta" / "backups" / backup["name"]
    assert beta_backups.is_dir()
    for file in beta_backups.rglob("*"):
        if file.is_file():
            assert b"0000-ALPHA" not in file.read_bytes()
    # stats count only the tenant's own records
    stats = client.get("/v1/memories/stats", headers=b).json()
    assert sum(row["records"] for row in stats["layers"].values()) == 1
    # audit entries are per tenant too
    entries = client.get("/v1/audit", headers=b).json()
    assert entries and {e["tenant"] for e in entries} == {"beta"}
    assert json.loads(entries[0]["detail"])["status"] == 201


def test_readyz_checks_the_tenant_of_the_key_sent(client: TestClient, key: Any) -> None:
    """A probe without a key checks the default tenant; with a key (the dashboard's Health
    page sends one), that key's own store, not the default tenant's."""
    reader = key("reader", "alpha")
    client.post("/v1/memories", json={"text": "one"}, headers=key("writer", "alpha"))
    client.post("/v1/memories", json={"text": "two"}, headers=key("writer", "alpha"))

    def indexes(answer: Any) -> str:
        assert answer.status_code in (200, 503), answer.text
        return str({c["name"]: c for c in answer.json()["checks"]}["indexes"]["detail"])

    assert indexes(client.get("/readyz")).startswith("0 record(s)")
    assert indexes(client.get("/readyz", headers=reader)).startswith("2 record(s)")
    bad = client.get("/readyz", headers={"Authorization": "Bearer mgr_nosuchkey"})
    assert bad.status_code == 401 and bad.json()["title"] == "Invalid API key"


def test_a_tenant_folder_that_cannot_be_made_fails_readiness_in_one_line(
    client: TestClient, key: Any, magray_home: Path
) -> None:
    """A file where the tenants' folder belongs: the probe answers 503 naming the file (a
    failed check, as a damaged store would), a request of that tenant one problem line."""
    tenants = load_settings().paths.data_dir / "tenants"
    tenants.parent.mkdir(parents=True, exist_ok=True)
    tenants.write_text("in the way", encoding="utf-8")
    probe = client.get("/readyz", headers=key("reader", "gamma"))
    assert probe.status_code == 503, probe.text
    check = {c["name"]: c for c in probe.json()["checks"]}["store"]
    assert not check["ok"]
    assert f"{tenants} is a file, not a folder: move it aside" in check["detail"]
    added = client.post("/v1/memories", json={"text": "x"}, headers=key("writer", "gamma"))
    assert added.status_code == 500 and "is a file, not a folder" in added.json()["detail"]
    assert "Traceback" not in added.text and "NotADirectoryError" not in added.text


def _has_data(client: TestClient, admin: dict[str, str]) -> dict[str, bool]:
    r = client.get("/v1/tenants", headers=admin)
    assert r.status_code == 200, r.text
    return {t["name"]: t["has_data"] for t in r.json()}


def test_a_tenant_that_only_reads_has_no_data(client: TestClient, key: Any) -> None:
    """Reads open a tenant's stores (its folder exists) but write nothing: no data. A
    record, a task or a backup is data; forgetting the last record leaves none."""
    admin, reader = key("admin", "default"), key("reader", "reads")
    for path in ("/v1/memories", "/v1/memories/stats", "/v1/memories/export", "/v1/tasks"):
        assert client.get(path, headers=reader).status_code == 200, path
        assert client.get(path, headers=admin).status_code == 200, path
    for who in (reader, admin):
        assert client.get("/v1/usage", headers=who).status_code == 200
        assert client.get("/v1/providers", headers=who).status_code == 200
        found = client.post("/v1/memories/search", json={"query": "anything"}, headers=who)
        assert found.status_code == 200, found.text
        assert client.get("/readyz", headers=who).status_code in (200, 503)
    assert client.get("/v1/memories/nope", headers=reader).status_code == 404
    data_dir = load_settings().paths.data_dir
    assert (data_dir / "tenants" / "reads").is_dir()  # the reads opened its store
    assert _has_data(client, admin) == {"default": False, "reads": False}

    rid = client.post("/v1/memories", json={"text": "a"}, headers=key("writer", "notes"))
    client.post("/v1/tasks", json={"title": "a task"}, headers=key("writer", "todo"))
    assert client.post("/v1/memories/backup", headers=key("admin", "saved")).status_code == 200
    assert _has_data(client, admin) == {
        "default": False,
        "reads": False,
        "notes": True,
        "todo": True,
        "saved": True,  # a backup of an empty store is still something it wrote
    }
    forgot = client.delete(f"/v1/memories/{rid.json()['id']}", headers=key("writer", "notes"))
    assert forgot.status_code == 200, forgot.text
    assert _has_data(client, admin)["notes"] is False


def test_has_data_on_postgresql(
    make_client: Any, key: Any, postgres_dsn: str, postgres_schema: str
) -> None:
    """On PostgreSQL a tenant's records are in a schema of its own: a reader's schema is
    made but empty (no data), a writer's holds a record (data)."""
    import psycopg

    from magray.memory.backends.postgres.connection import schema_name

    client = make_client(
        memory__backend="postgres", memory__dsn=postgres_dsn, memory__pg_schema=postgres_schema
    )
    admin, reader, writer = key("admin", "default"), key("reader", "reads"), key("writer", "notes")
    try:
        assert client.get("/v1/memories", headers=reader).status_code == 200
        assert client.post("/v1/memories", json={"text": "a"}, headers=writer).status_code == 201
        assert _has_data(client, admin) == {"default": False, "reads": False, "notes": True}
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            made = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s",
                (schema_name("reads", postgres_schema),),
            ).fetchone()
        assert made is not None  # the read made the schema: its emptiness is what counts
    finally:
        client.__exit__(None, None, None)  # the tenants' pools, before their schemas go
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for tenant in ("reads", "notes"):
                name = schema_name(tenant, postgres_schema)
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
