"""The dashboard's client of MAGRAY's own HTTP API, in process.

Every page is drawn from ``/v1`` answers fetched with the signed-in user's key, through the
same ASGI stack as any other client (guard, auth, roles, rate limits, audit, metrics), so
the dashboard can do nothing the key could not do over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


@dataclass
class Answer:
    """One API response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def problem(self) -> str:
        """The problem's detail (RFC 9457 body), or the status when there is none."""
        try:
            data = self.json()
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("detail"):
            return str(data["detail"])
        return f"the server answered {self.status}."


class Api:
    """Calls the wrapped application as an HTTP client would, with a bearer key."""

    def __init__(self, app: ASGIApp, key: str | None, client: tuple[str, int]) -> None:
        self.app = app
        self.key = key
        self.client = client

    def _scope(
        self, method: str, path: str, params: dict[str, Any] | None, accept: str, size: int
    ) -> dict[str, Any]:
        query = urlencode(
            [
                (k, x)
                for k, v in (params or {}).items()
                if v is not None
                for x in (v if isinstance(v, list) else [v])
            ]
        )
        headers = [
            (b"host", b"magray-ui"),
            (b"accept", accept.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(size).encode()),
            (b"user-agent", b"magray-dashboard"),
        ]
        if self.key:
            headers.append((b"authorization", f"Bearer {self.key}".encode()))
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": self.client,
            "server": ("magray-ui", 80),
        }

    async def stream(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        accept: str = "application/json",
    ) -> AsyncIterator[tuple[int, bytes]]:
        """Yields ``(status, chunk)`` as the application sends its body; leaving early
        tells the application its client went away."""
        data = b"" if body is None else json.dumps(body).encode()
        scope = self._scope(method, path, params, accept, len(data))
        sent = False
        gone = asyncio.Event()
        out: asyncio.Queue[Message | None] = asyncio.Queue()

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            await out.put(message)

        async def run_app() -> None:
            try:
                await self.app(scope, receive, send)
            finally:
                await out.put(None)

        task = asyncio.create_task(run_app())
        status = 500
        try:
            while True:
                message = await out.get()
                if message is None:
                    break
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                elif message["type"] == "http.response.body":
                    chunk = bytes(message.get("body", b""))
                    if chunk:
                        yield status, chunk
                    if not message.get("more_body", False):
                        break
        finally:
            gone.set()
            await task

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Answer:
        """The whole response of one request."""
        data = b"" if body is None else json.dumps(body).encode()
        scope = self._scope(method, path, params, "application/json", len(data))
        answer = Answer(500, b"")
        parts: list[bytes] = []
        sent = False
        done = asyncio.Event()

        async def receive() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = int(message["status"])
                answer.headers = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
                }
            elif message["type"] == "http.response.body":
                parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        try:
            await self.app(scope, receive, send)
        finally:
            done.set()
        answer.body = b"".join(parts)
        return answer

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params=params)

    async def post(self, path: str, body: Any = None, **params: Any) -> Answer:
        return await self.call("POST", path, body=body, params=params)

    async def delete(self, path: str) -> Answer:
        return await self.call("DELETE", path)
