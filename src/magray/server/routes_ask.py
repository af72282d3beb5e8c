"""``POST /v1/ask``: an answer grounded in memory, streamed as server-sent events when the
client accepts ``text/event-stream``, else one JSON body like ``magray ask --json``.

The stream's events, in order: ``delta`` (``{"text"}``, once per piece of the answer), then
``result`` (the ``ask --json`` body) or ``error`` (a problem body). When the client goes
away the answer stops: the next piece the model sends ends the generation.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, format_sse_event

from magray.errors import MagrayError, NotFoundError
from magray.observability.logs import request_id
from magray.server.deps import Svc, Writer
from magray.server.problems import body, from_magray
from magray.server.schemas import AskIn
from magray.server.tenants import Tenant

router = APIRouter(prefix="/v1", tags=["ask"])

ASK_JSON_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string"},
        "provider": {"type": "string"},
        "model": {"type": "string"},
        "conversation_id": {"type": "string"},
        "memories": {"type": "array", "items": {"type": "object"}},
        "cited": {"type": "array", "items": {"type": "string"}},
        "usage": {"type": "object"},
        "latency_ms": {"type": "number"},
        "finish_reason": {"type": ["string", "null"]},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}
SSE_ITEM = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["delta", "result", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
    },
    "required": ["event", "data"],
}


class Cancelled(Exception):
    """The client went away; the answer stops here."""


def _check(tenant: Tenant, q: AskIn) -> None:
    """Runs on the tenant's LLM thread: what can be refused before any answer starts."""
    from magray.agent.session import check_length

    check_length(q.question, "the question")
    rt = tenant.runtime
    if q.conversation and not rt.conversations.exists(q.conversation):
        raise NotFoundError(
            f"no conversation {q.conversation!r} in this tenant; send the conversation_id an"
            " earlier answer returned, or leave conversation out to start one."
        )
    if q.provider is not None:
        # a blank name is refused; UnknownProviderError names the configured ones
        rt.router.config.get(rt.router.config.named(q.provider))
    if q.model:  # a model the provider cannot switch to (the embedded local one)
        rt.router.check_model(rt.router.config.chain(q.provider)[0], q.model)


def _answer(tenant: Tenant, q: AskIn, on_text: Callable[[str], None] | None) -> dict[str, Any]:
    """Runs on the tenant's LLM thread: one answer through the agent's session."""
    from magray.views import ask_json

    rt = tenant.runtime
    _check(tenant, q)
    session = rt.session(None if q.no_memory else tenant.memory)
    result = session.ask(
        q.question,
        provider=q.provider,
        model=q.model,
        conversation_id=q.conversation,
        on_text=on_text,
    )
    return ask_json(result)


def _count_tokens(svc: Any, data: dict[str, Any]) -> None:
    usage = data.get("usage") or {}
    provider = str(data.get("provider") or "unknown")
    svc.metrics.llm_tokens.labels(provider, "prompt").inc(usage.get("prompt_tokens") or 0)
    svc.metrics.llm_tokens.labels(provider, "completion").inc(usage.get("completion_tokens") or 0)


def _event(name: str, data: Any, n: int) -> bytes:
    return format_sse_event(data_str=json.dumps(data, ensure_ascii=False), event=name, id=str(n))


@router.post(
    "/ask",
    summary="Answer a question grounded in memory (SSE with Accept: text/event-stream).",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "The answer: JSON like `magray ask --json`, or an event stream.",
            "content": {
                "application/json": {"schema": ASK_JSON_SCHEMA},
                "text/event-stream": {"itemSchema": SSE_ITEM, "schema": {"type": "string"}},
            },
        }
    },
)
async def ask(q: AskIn, request: Request, svc: Svc, who: Writer) -> Any:
    tenant = svc.tenant(who)
    if "text/event-stream" not in request.headers.get("accept", ""):
        future = tenant.llm(lambda: _answer(tenant, q, None))
        data = await asyncio.wrap_future(future)
        _count_tokens(svc, data)
        return JSONResponse(data)
    # Bad input is a problem answer (4xx), not an error event in a 200 stream.
    await asyncio.wrap_future(tenant.llm(lambda: _check(tenant, q)))
    rid = request_id.get()  # the LLM thread does not see this request's context
    return EventSourceResponse(_stream(svc, tenant, q, rid), media_type="text/event-stream")


async def _stream(svc: Any, tenant: Tenant, q: AskIn, rid: str) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    gone = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, item)

    def on_text(text: str) -> None:
        if gone.is_set():
            raise Cancelled
        put(("delta", {"text": text}))

    def work() -> None:
        try:
            data = _answer(tenant, q, on_text)
            _count_tokens(svc, data)
            put(("result", data))
        except Cancelled:
            put(("cancelled", None))
        except MagrayError as exc:
            p = from_magray(exc)
            put(("error", body(p.status, p.slug, p.title, p.detail, request_id=rid)))
        except Exception as exc:
            problem = body(500, "internal", "Internal error", f"unexpected {exc!r}", request_id=rid)
            put(("error", problem))

    tenant.llm(work)
    n = 0
    try:
        while True:
            name, data = await events.get()
            if name == "cancelled":
                return
            n += 1
            yield _event(name, data, n)
            if name in ("result", "error"):
                return
    finally:
        gone.set()
