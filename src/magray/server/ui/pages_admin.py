"""The Admin page (admin keys only): API keys (a new key is shown once), tenants, and the
audit log with the result of verifying its hash chain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from magray.server.ui.api import Answer
    from magray.server.ui.app import Ui
    from magray.server.ui.session import User


def _missing(answer: Answer, route: str) -> str | None:
    """Why a section is empty: the API's refusal, or a route this server does not have."""
    if answer.ok:
        return None
    if answer.status in (404, 405) and "no such route" in answer.problem():
        return f"this server has no {route} route yet."
    return answer.problem()


async def admin(
    request: Request,
    ui: Ui,
    user: User,
    created: dict[str, Any] | None = None,
    note: str | None = None,
) -> Response:
    api = ui.api(request, user)
    audit = await api.get("/v1/audit", limit=50)
    if audit.status in (401, 403):
        return ui.error(request, user, 403, "the Admin page needs a key with the admin role.")
    keys = await api.get("/v1/keys")
    tenants = await api.get("/v1/tenants")
    verify = await api.get("/v1/audit/verify")
    return ui.render(
        request,
        "admin.html",
        user,
        audit=list(reversed(audit.json())) if audit.ok else [],
        audit_error=_missing(audit, "GET /v1/audit"),
        keys=keys.json() if keys.ok else [],
        keys_error=_missing(keys, "GET /v1/keys"),
        tenants=tenants.json() if tenants.ok else [],
        tenants_error=_missing(tenants, "GET /v1/tenants"),
        verify=verify.json() if verify.ok else None,
        verify_error=_missing(verify, "GET /v1/audit/verify"),
        created=created,
        note=note,
    )


async def page_admin(request: Request, ui: Ui, user: User) -> Response:
    return await admin(request, ui, user)


async def create_key(request: Request, ui: Ui, user: User) -> Response:
    form = await request.form()
    body = {"role": str(form.get("role") or "reader"), "tenant": str(form.get("tenant") or "")}
    answer = await ui.api(request, user).post("/v1/keys", body)
    if not answer.ok:
        return await admin(request, ui, user, note=_missing(answer, "POST /v1/keys"))
    return await admin(request, ui, user, created=answer.json())


async def revoke_key(request: Request, ui: Ui, user: User) -> Response:
    kid = request.path_params["id"]
    answer = await ui.api(request, user).delete(f"/v1/keys/{kid}")
    note = f"Revoked key {kid}." if answer.ok else _missing(answer, "DELETE /v1/keys/{id}")
    return await admin(request, ui, user, note=note)


def routes(page: Callable[[Any], Callable[[Request], Awaitable[Response]]]) -> list[Route]:
    return [
        Route("/ui/admin", page(page_admin)),
        Route("/ui/admin/keys", page(create_key), methods=["POST"]),
        Route("/ui/admin/keys/{id}/revoke", page(revoke_key), methods=["POST"]),
    ]
