"""``POST /v1/memories/search`` without FastAPI's machinery, for the plain requests.

A search is the server's hot path, and FastAPI's own work per request (its middleware
stack, routing, dependency solving, body validation through the dependency graph) costs
more CPU than the key check, the JSON and the metrics together. This layer, between the
guard and FastAPI, answers a search itself when everything about it is plain: a JSON body
that ``SearchIn`` accepts, a bearer key already verified (in the key cache) whose role may
read, and a token left in the key's bucket. The answer is the route's own
(``routes_memory.searched``), and errors raised by the search map to the same problem
responses as the app's exception handlers.

Every other request, and every search that is not plain (no key, an unknown or revoked
one, a weak role, over the rate, a body that is not JSON or not valid, another content
type), goes to FastAPI unchanged, its body replayed: every answer but the plain one is
FastAPI's own. The guard around both still gives the request id, the body limit, the work
queue, the log line, the metrics and the audit entries.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.responses import Response

from magray.errors import MagrayError
from magray.server.keys import Role
from magray.server.problems import Problem
from magray.server.schemas import SearchIn

if TYPE_CHECKING:
    from fastapi import FastAPI

    from magray.server.auth import Principal
    from magray.server.deps import Services

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PATH = "/v1/memories/search"


class FastSearch:
    """Wraps the FastAPI app; answers plain searches, passes everything else through."""

    def __init__(
        self, app: FastAPI, svc: Services, *, on_error: Callable[[Exception], Response]
    ) -> None:
        self.app = app
        self.svc = svc
        self.on_error = on_error
        from magray.server.routes_memory import router

        # The route object: the metrics and the log name the route by its path.
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH)
        self.answered = 0  # searches answered here (the rest went to FastAPI)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        plain = self._plain(scope, received)
        if plain is None:
            await self.app(scope, _replay(received, receive), send)
            return
        query, who = plain
        scope.setdefault("state", {})["principal"] = who
        scope["route"] = self.route
        self.answered += 1
        try:
            from magray.server.routes_memory import searched

            response = await searched(query, self.svc, who)
        except Exception as exc:
            await self.on_error(exc)(scope, receive, send)
            if isinstance(exc, (Problem, MagrayError)):
                return
            raise  # as Starlette's error middleware does: the server logs it too
        await response(scope, receive, send)

    def _plain(self, scope: Scope, received: list[Message]) -> tuple[SearchIn, Principal] | None:
        """The query and the caller when the request is plain, else None (FastAPI answers)."""
        if received[-1]["type"] != "http.request":
            return None  # the client left, or the guard stopped an oversized body
        content_type = authorization = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"authorization":
                authorization = value
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return None
        raw = b"".join(m.get("body", b"") for m in received)
        try:
            query = SearchIn.model_validate(json.loads(raw))
        except (ValueError, RecursionError, ValidationError):  # JSON errors are ValueErrors
            return None  # FastAPI's own route answers it with the problem
        if not authorization:
            return None
        who = self.svc.auth.cached(authorization.decode("latin-1"), Role.READER)
        return None if who is None else (query, who)


def _replay(received: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives the messages already read first."""
    pending = list(received)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
