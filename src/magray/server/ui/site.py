"""The outermost application of ``magray serve``: ``/ui`` goes to the dashboard, the rest
to the API (which the dashboard itself calls, in process, with the signed-in user's key)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Site:
    """Routes ``/ui`` and ``/ui/...`` to the dashboard; everything else to the API."""

    def __init__(self, api: ASGIApp, ui: ASGIApp) -> None:
        self.api = api
        self.ui = ui

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/ui" or path.startswith("/ui/")):
            await self.ui(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        # The API's attributes (``fastapi``, ``metrics``, ...) stay reachable through the site.
        return getattr(self.api, name)


def with_dashboard(api: Any) -> Site:
    """The API wrapped with the dashboard at ``/ui``."""
    from magray.server.ui.app import create_ui

    return Site(api, create_ui(api))
