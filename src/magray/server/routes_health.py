"""``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus).

The probes need no key. ``/metrics`` names every tenant (records, bytes, recall latency,
breakers), so it needs an admin key, as the server's tenant listing does; a key-less
loopback client of ``server.auth = "off"`` is an admin, so it scrapes without one.
"""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from magray import __version__
from magray.server.auth import DEFAULT_TENANT
from magray.server.deps import ADMIN_ONLY, Admin, Svc

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers.")
def healthz() -> dict[str, Any]:
    return {"ok": True, "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: store open, indexes consistent, model loaded, provider usable.",
    responses={503: {"description": "A check failed; the body names it."}},
)
async def readyz(request: Request, svc: Svc) -> JSONResponse:
    """The checks of the ``default`` tenant, or of the tenant of the API key sent with the
    request (any role; an unknown or revoked key is a 401): a probe needs no key, and the
    dashboard's Health page shows the signed-in key's own store."""
    from magray.errors import MagrayError
    from magray.observability.health import Check, readiness, report

    name = DEFAULT_TENANT
    if request.headers.get("authorization"):
        name = (await svc.auth.principal(request)).tenant

    def check() -> dict[str, Any]:
        try:
            tenant = svc.tenants.get(name)
        except MagrayError as exc:  # the tenant's store cannot be opened: not ready
            return report([Check("store", False, exc.message_for("api"))])
        checks = readiness(tenant.runtime, lock=tenant.lock)
        return report(checks)

    data = await anyio.to_thread.run_sync(check)
    return JSONResponse(data, status_code=200 if data["ok"] else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format); needs an admin key.",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **ADMIN_ONLY,
    },
)
def metrics(svc: Svc, _: Admin) -> Response:
    from magray.observability.metrics import CONTENT_TYPE

    return Response(svc.metrics.render(), media_type=CONTENT_TYPE)
