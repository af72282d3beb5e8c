"""FastAPI dependencies shared by the routes: the services, the caller and its tenant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from magray.server.auth import Principal
from magray.server.keys import Role

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.observability.audit_chain import AuditChain
    from magray.observability.metrics import Metrics
    from magray.server.auth import Authenticator
    from magray.server.tenants import Tenant, TenantPool


@dataclass
class Services:
    """What every route reaches through ``request.app.state.services``."""

    settings: Settings
    tenants: TenantPool
    auth: Authenticator
    metrics: Metrics
    chain: AuditChain

    def tenant(self, who: Principal) -> Tenant:
        return self.tenants.get(who.tenant)


async def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


# Declares the bearer scheme in the OpenAPI document (generated clients send the key); the
# check itself is the authenticator's, with MAGRAY's own 401 problems.
bearer = HTTPBearer(auto_error=False, description="An API key from `magray auth create-key`.")


def need(role: Role) -> Any:
    """A dependency: the caller, if its key allows ``role`` and it is within its rate."""

    async def dependency(
        request: Request,
        _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        svc: Services = request.app.state.services
        return await svc.auth.require(role)(request)

    return Depends(dependency)


Svc = Annotated[Services, Depends(services)]
Reader = Annotated[Principal, need(Role.READER)]
Writer = Annotated[Principal, need(Role.WRITER)]
Admin = Annotated[Principal, need(Role.ADMIN)]

#: the OpenAPI ``responses`` of a route that needs an admin key
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {
    401: {"description": "No key, or an unknown or revoked key."},
    403: {"description": "The key's role is not admin."},
}
