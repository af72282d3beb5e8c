"""``/v1/keys``, ``/v1/tenants`` and ``/v1/audit/verify``: the server's administration (admin).

An admin key administers the whole server, not only its own tenant: it lists and makes keys
for any tenant, lists every tenant, and verifies the one audit chain they share. Creating and
revoking a key are audited like every mutating call (the guard appends the entry; the target
names the key).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from magray.errors import NotFoundError
from magray.server.deps import ADMIN_ONLY, Admin, Svc
from magray.server.keys import check_tenant, parse_role
from magray.server.schemas import ChainCheck, KeyIn, KeyOut, NewKey, TenantOut
from magray.server.tenants import has_data, tenants_on_disk

router = APIRouter(prefix="/v1")


@router.get(
    "/keys",
    tags=["admin"],
    summary="Every API key (never the key or its hash), oldest first.",
    response_model=list[KeyOut],
    responses=ADMIN_ONLY,
)
def list_keys(svc: Svc, who: Admin) -> list[dict[str, Any]]:
    return [k.to_json() for k in svc.auth.keys.list()]


@router.post(
    "/keys",
    tags=["admin"],
    status_code=201,
    summary="Create a key for a role and tenant; the key is in this answer only.",
    response_model=NewKey,
    responses={**ADMIN_ONLY, 422: {"description": "Unknown role or invalid tenant name."}},
)
def create_key(body: KeyIn, request: Request, svc: Svc, who: Admin) -> dict[str, Any]:
    role = parse_role(body.role)
    tenant = check_tenant(body.tenant)
    key, secret = svc.auth.keys.create(role, tenant)
    request.state.audit_target = f"key {key.id} ({role}@{tenant})"
    return {"id": key.id, "key": secret, "role": str(role), "tenant": tenant}


@router.delete(
    "/keys/{id}",
    tags=["admin"],
    summary="Revoke a key; requests with it are refused from now on.",
    response_model=KeyOut,
    responses={**ADMIN_ONLY, 404: {"description": "No key with this id, or it is revoked."}},
)
def revoke_key(id: str, request: Request, svc: Svc, who: Admin) -> dict[str, Any]:
    known = {k.id: k for k in svc.auth.keys.list()}
    if id not in known:
        raise NotFoundError(f"no key with id {id!r}; GET /v1/keys lists the keys.")
    if known[id].revoked_at is not None:
        raise NotFoundError(f"the key {id!r} is already revoked; there is nothing to do.")
    key = svc.auth.keys.revoke(id)
    svc.auth.forget()
    request.state.audit_target = f"key {key.id} ({key.role}@{key.tenant})"
    return key.to_json()


@router.get(
    "/tenants",
    tags=["admin"],
    summary="The tenants: those named by a key and those with a data folder; has_data when"
    " a tenant holds a record, task, conversation, LLM call or backup.",
    response_model=list[TenantOut],
    responses=ADMIN_ONLY,
)
def list_tenants(svc: Svc, who: Admin) -> list[dict[str, Any]]:
    keys = svc.auth.keys.list()
    on_disk = set(tenants_on_disk(svc.settings.paths.data_dir))
    names = sorted(on_disk | {k.tenant for k in keys})
    return [
        {
            "name": name,
            "keys": sum(k.tenant == name for k in keys),
            "active_keys": sum(k.tenant == name and k.revoked_at is None for k in keys),
            "has_data": name in on_disk and has_data(svc.settings, name),
        }
        for name in names
    ]


@router.get(
    "/audit/verify",
    tags=["audit"],
    summary="Recompute the audit hash chain: ok, entries checked, the first bad entry (admin).",
    response_model=ChainCheck,
    responses=ADMIN_ONLY,
)
def verify_chain(svc: Svc, who: Admin) -> dict[str, Any]:
    return svc.chain.verify().to_json()
