"""Tenant A can never read, search, get, list, export or back up tenant B's records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

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
