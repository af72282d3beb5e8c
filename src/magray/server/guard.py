"""The outermost ASGI layer: request ids, the body limit, the bounded work queue, the
request log, metrics, and the audit entries of mutating and denied calls.

Order per request: give it an id → refuse a URL over :data:`MAX_URL_BYTES` (414) → refuse
headers over :data:`MAX_HEADER_BYTES` (431) → refuse a body over the limit (413) → wait for one of
``server.max_concurrency`` slots, or answer 503 with ``Retry-After`` when ``server.queue_size``
requests already wait → run the app → log one JSON line, count it, and audit it when it
changed something or was denied.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from magray.observability.audit_chain import AuditChain
from magray.observability.logs import request_id
from magray.observability.metrics import Metrics
from magray.server.problems import PROBLEM_JSON, body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("magray.server")
EXEMPT = ("/healthz", "/readyz", "/metrics")
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
READ_ONLY_POSTS = {"/v1/memories/search"}
_RID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Path and query string together; below what uvicorn's parsers take (64 KiB on httptools,
# 16 KiB of request line and headers on h11), so a long URL gets the app's answer.
MAX_URL_BYTES = 8 * 1024
# Header names and values together (4 bytes of ': ' and CRLF each). magray.server.protocol
# stops httptools at a head of HEAD_LIMIT (96 KiB, 431) and h11 refuses more than 16 KiB of
# request line and headers (400); this keeps headers bounded whichever parser runs.
MAX_HEADER_BYTES = 16 * 1024


async def send_problem(
    send: Send, status: int, slug: str, title: str, detail: str, headers: dict[str, str]
) -> None:
    data = json.dumps(body(status, slug, title, detail)).encode()
    raw = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """Wraps the FastAPI app; one instance per app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        chain: AuditChain,
        max_body: int,
        max_concurrency: int,
        queue_size: int,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.chain = chain
        self.max_body = max_body
        self.queue_size = queue_size
        self.slots = asyncio.Semaphore(max_concurrency)
        self.waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _RID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        started = time.perf_counter()
        status = {"code": 500}
        extra = [(b"x-request-id", rid.encode())]

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
                message["headers"] = list(message.get("headers") or []) + extra
            await send(message)

        try:
            await self._guarded(scope, receive, send_wrapped, headers)
        finally:
            await self._done(scope, status["code"], time.perf_counter() - started)
            request_id.reset(token)

    async def _refuse(
        self, send: Send, reason: str, status: int, slug: str, title: str, detail: str
    ) -> None:
        """Count a request refused before the app (``reason`` labels the metric) and answer
        it with its problem."""
        self.metrics.rejected.labels(reason).inc()
        await send_problem(send, status, slug, title, detail, {})

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]
    ) -> None:
        path = str(scope.get("path", ""))
        url_bytes = len(scope.get("raw_path") or path.encode()) + len(
            scope.get("query_string") or b""
        )
        if url_bytes > MAX_URL_BYTES:
            await self._refuse(
                send,
                "url_too_long",
                414,
                "url-too-long",
                "URL too long",
                f"the URL has {url_bytes:,} bytes, more than the limit of {MAX_URL_BYTES:,};"
                " send a long query in the body of a POST (as POST /v1/memories/search"
                " takes it).",
            )
            return
        header_bytes = sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or [])
        if header_bytes > MAX_HEADER_BYTES:
            await self._refuse(
                send,
                "headers_too_large",
                431,
                "headers-too-large",
                "Request headers too large",
                f"the headers have {header_bytes:,} bytes, more than the limit of"
                f" {MAX_HEADER_BYTES:,}; send fewer or shorter headers (put data in the body).",
            )
            return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._refuse(
                send,
                "too_large",
                413,
                "too-large",
                "Request body too large",
                f"the body has {int(length):,} bytes, more than the limit of"
                f" {self.max_body:,}; send less per request (batches, smaller"
                " files).",
            )
            return
        received = 0
        over = {"flag": False, "answered": False}

        async def receive_limited() -> Message:
            # Past the limit the app is told the client left; its answer is replaced by 413.
            nonlocal received
            if over["flag"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    over["flag"] = True
                    return {"type": "http.disconnect"}
            return message

        async def send_or_413(message: Message) -> None:
            if not over["flag"]:
                await send(message)
                return
            if not over["answered"]:
                over["answered"] = True
                self.metrics.rejected.labels("too_large").inc()
                await send_problem(
                    send,
                    413,
                    "too-large",
                    "Request body too large",
                    f"the body is larger than the limit of {self.max_body:,}"
                    " bytes; send less per request (batches, smaller files).",
                    {},
                )

        if path.startswith(EXEMPT):
            await self.app(scope, receive_limited, send_or_413)
            return
        if self.slots.locked() and self.waiting >= self.queue_size:
            self.metrics.rejected.labels("queue_full").inc()
            await send_problem(
                send,
                503,
                "overloaded",
                "Server busy",
                "the server is working at capacity and its queue is full; retry"
                " after the number of seconds in Retry-After.",
                {"Retry-After": "1"},
            )
            return
        self.waiting += 1
        self.metrics.queued.inc()
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
            self.metrics.queued.dec()
        self.metrics.in_flight.inc()

        try:
            await self.app(scope, receive_limited, send_or_413)
            if over["flag"] and not over["answered"]:
                await send_or_413({"type": "http.response.start"})
        except Exception:
            if not over["flag"]:
                raise
            if not over["answered"]:
                await send_or_413({"type": "http.response.start"})
        finally:
            self.slots.release()
            self.metrics.in_flight.dec()

    async def _done(self, scope: Scope, status: int, seconds: float) -> None:
        route_obj = scope.get("route")
        route = getattr(route_obj, "path", None) or "unmatched"
        method = str(scope.get("method", ""))
        code = str(status)
        self.metrics.requests.labels(route, method, code).inc()
        self.metrics.latency.labels(route, method, code).observe(seconds)
        state = scope.get("state") or {}
        principal = state.get("principal")
        tenant = getattr(principal, "tenant", "-")
        actor = getattr(principal, "key_id", "-")
        log.info(
            "%s %s %s",
            method,
            scope.get("path", ""),
            status,
            extra={
                "status": status,
                "route": route,
                "ms": round(seconds * 1000, 2),
                "tenant": tenant,
                "actor": actor,
            },
        )
        denied = status in (401, 403)
        changed = method in MUTATING and status < 400 and route not in READ_ONLY_POSTS
        if route == "unmatched" and not denied:
            return
        if denied or changed:
            who = actor if principal is not None else str(state.get("presented", "-"))
            detail = json.dumps({"status": status, "request_id": request_id.get()})

            def append() -> None:
                self.chain.append(
                    tenant=tenant,
                    actor=who,
                    action=f"{method} {route}",
                    target=str(state.get("audit_target") or scope.get("path", "")),
                    outcome="denied" if denied else "ok",
                    detail=detail,
                )

            try:
                await anyio.to_thread.run_sync(append)
            except Exception as exc:  # the request is done; the failure is logged loudly
                log.error("audit append failed: %s", exc)
