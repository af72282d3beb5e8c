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


UI_MAX_BODY = 2 * 1024 * 1024  # bytes: the dashboard's forms are small (a memory's text at most)


class Site:
    """Routes ``/ui`` and ``/ui/...`` to the dashboard; everything else to the API."""

    def __init__(self, api: ASGIApp, ui: ASGIApp, max_body: int = UI_MAX_BODY) -> None:
        self.api = api
        self.ui = ui
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/ui" or path.startswith("/ui/")):
            await self._ui(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _ui(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The dashboard, with a body limit of its own (its pages pass the API's guard only
        for the API calls they make)."""
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_body:
            text = b"The form is too large for the dashboard; send less."
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": text})
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:  # a body without a length that grows too large
                return {"type": "http.disconnect"}
            return message

        await self.ui(scope, limited, send)

    def __getattr__(self, name: str) -> Any:
        # The API's attributes (``fastapi``, ``metrics``, ...) stay reachable through the site.
        return getattr(self.api, name)


def with_dashboard(api: Any) -> Site:
    """The API wrapped with the dashboard at ``/ui``."""
    from magray.server.ui.app import create_ui

    return Site(api, create_ui(api))
