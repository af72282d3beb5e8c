"""``/v1/keys``, ``/v1/tenants`` and ``/v1/audit/verify``: contracts, roles, audit entries."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from starlette.testclient import TestClient

from magray.config import load_settings
from magray.observability.audit_chain import AuditChain, chain_file
from tests.server.test_access import assert_problem

ROUTES = [
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"role": "reader", "tenant": "t1"}),
    ("DELETE", "/v1/keys/abc123", None),
    ("GET", "/v1/tenants", None),
    ("GET", "/v1/audit/verify", None),
]


def chain() -> AuditChain:
    return AuditChain(chain_file(load_settings().paths.data_dir))


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_admin_routes_need_an_admin_key(
    client: TestClient, key: Any, method: str, path: str, body: Any
) -> None:
    assert_problem(client.request(method, path, json=body), 401)
    for role in ("reader", "writer"):
        r = client.request(method, path, json=body, headers=key(role))
        assert f"role {role}" in assert_problem(r, 403)["detail"]


def test_create_list_use_and_revoke_a_key(client: TestClient, key: Any) -> None:
    admin = key("admin")
    made = client.post("/v1/keys", json={"role": "reader", "tenant": "t1"}, headers=admin)
    assert made.status_code == 201, made.text
    new = made.json()
    assert set(new) == {"id", "key", "role", "tenant"}
    assert new["key"].startswith("mgr_") and (new["role"], new["tenant"]) == ("reader", "t1")

    listed = client.get("/v1/keys", headers=admin)
    assert listed.status_code == 200 and new["key"] not in listed.text
    row = next(k for k in listed.json() if k["id"] == new["id"])
    assert row == {**row, "role": "reader", "tenant": "t1", "revoked": False}
    assert set(row) == {"id", "role", "tenant", "created_at", "revoked"}
    assert "hash" not in listed.text

    theirs = {"Authorization": f"Bearer {new['key']}"}
    assert client.get("/v1/memories", headers=theirs).status_code == 200
    assert_problem(client.post("/v1/memories", json={"text": "x"}, headers=theirs), 403)

    gone = client.delete(f"/v1/keys/{new['id']}", headers=admin)
    assert gone.status_code == 200 and gone.json()["revoked"] is True
    assert (
        "unknown or revoked"
        in assert_problem(client.get("/v1/memories", headers=theirs), 401)["detail"]
    )
    row = next(k for k in client.get("/v1/keys", headers=admin).json() if k["id"] == new["id"])
    assert row["revoked"] is True
    again = client.delete(f"/v1/keys/{new['id']}", headers=admin)
    assert "already revoked" in assert_problem(again, 404)["detail"]


def test_a_key_made_by_the_api_can_administer(client: TestClient, key: Any) -> None:
    made = client.post("/v1/keys", json={"role": "admin", "tenant": "ops"}, headers=key("admin"))
    theirs = {"Authorization": f"Bearer {made.json()['key']}"}
    r = client.get("/v1/tenants", headers=theirs)
    assert r.status_code == 200 and "ops" in [t["name"] for t in r.json()]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"role": "root", "tenant": "t1"}, "role"),
        ({"role": "reader", "tenant": "../etc"}, "invalid tenant"),
        ({"role": "reader", "tenant": "Upper"}, "invalid tenant"),
        ({"role": "reader", "tenant": "acme\n"}, "invalid tenant"),  # "$" matched before it
        ({"role": "reader"}, "tenant"),
        ({"role": "reader", "tenant": "t1", "extra": 1}, "extra"),
    ],
)
def test_bad_role_or_tenant_is_422(client: TestClient, key: Any, body: Any, word: str) -> None:
    r = client.post("/v1/keys", json=body, headers=key("admin"))
    assert word in assert_problem(r, 422)["detail"]


def test_unknown_key_id_is_404(client: TestClient, key: Any) -> None:
    r = client.delete("/v1/keys/nope", headers=key("admin"))
    assert "GET /v1/keys" in assert_problem(r, 404)["detail"]


def test_tenants_come_from_keys_and_folders(client: TestClient, key: Any) -> None:
    admin = key("admin", "default")
    key("reader", "acme")
    client.post("/v1/memories", json={"text": "hello"}, headers=key("writer", "globex"))
    data_dir = load_settings().paths.data_dir
    (data_dir / "tenants" / "orphan").mkdir(parents=True)
    (data_dir / "tenants" / "Not A Tenant").mkdir()
    r = client.get("/v1/tenants", headers=admin)
    assert r.status_code == 200
    tenants = {t["name"]: t for t in r.json()}
    assert set(tenants) == {"default", "acme", "globex", "orphan"}
    assert tenants["acme"] == {"name": "acme", "keys": 1, "active_keys": 1, "has_data": False}
    assert tenants["globex"]["has_data"] and tenants["orphan"]["keys"] == 0


def test_key_changes_are_audited_and_the_chain_verifies(client: TestClient, key: Any) -> None:
    admin = key("admin")
    made = client.post("/v1/keys", json={"role": "writer", "tenant": "t2"}, headers=admin).json()
    client.delete(f"/v1/keys/{made['id']}", headers=admin)
    client.get("/v1/keys", headers=key("reader"))  # denied: audited too
    entries = chain().entries()
    actions = [(e.action, e.target, e.outcome) for e in entries]
    assert ("POST /v1/keys", f"key {made['id']} (writer@t2)", "ok") in actions
    assert ("DELETE /v1/keys/{id}", f"key {made['id']} (writer@t2)", "ok") in actions
    assert ("GET /v1/keys", "/v1/keys", "denied") in actions
    assert made["key"] not in str([e.to_json() for e in entries])

    r = client.get("/v1/audit/verify", headers=admin)
    assert r.status_code == 200
    assert r.json() == {"ok": True, "checked": len(entries), "first_bad": None, "reason": ""}

    with sqlite3.connect(chain().path) as conn:
        conn.execute("UPDATE chain SET outcome = 'denied' WHERE seq = 2")
    broken = client.get("/v1/audit/verify", headers=admin).json()
    assert broken["ok"] is False and broken["first_bad"] == 2 and "modified" in broken["reason"]


def test_openapi_documents_the_admin_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/v1/keys"]) == {"get", "post"}
    assert "delete" in paths["/v1/keys/{id}"]
    assert "get" in paths["/v1/tenants"] and "get" in paths["/v1/audit/verify"]
    assert "403" in paths["/v1/keys"]["post"]["responses"]
