"""The Agent page: chat with streamed answers and citations, agent runs whose plan and
steps stream in, with the plan's exact tool calls shown for approval, and past runs."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from magray.server.ui.api import Api
    from magray.server.ui.app import Ui
    from magray.server.ui.session import User

SSE = "text/event-stream"


async def agent(request: Request, ui: Ui, user: User) -> Response:
    from magray.agent.session import AGENT_RUN

    listing = await ui.api(request, user).get("/v1/memories", limit=500)
    records = listing.json()["records"] if listing.ok else []
    past = [r for r in records if r.get("kind") == AGENT_RUN][:20]
    return ui.render(request, "agent.html", user, past=past)


def _problem_event(status: int, detail: str) -> bytes:
    data = {"status": status, "detail": detail}
    return f"event: error\ndata: {json.dumps(data)}\n\n".encode()


async def _relay(api: Api, method: str, path: str, body: Any = None) -> AsyncIterator[bytes]:
    """The API's event stream as it comes; a refusal becomes one ``error`` event."""
    failed: list[bytes] = []
    async for status, chunk in api.stream(method, path, body=body, accept=SSE):
        if status >= 400:
            failed.append(chunk)
            continue
        yield chunk
    if failed:
        try:
            detail = str(json.loads(b"".join(failed)).get("detail"))
        except (ValueError, AttributeError):
            detail = "the server refused the request."
        yield _problem_event(400, detail)


def _csrf_query(request: Request, user: User) -> bool:
    return hmac.compare_digest(request.query_params.get("csrf", ""), user.csrf)


def _stream(chunks: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        chunks, media_type=SSE, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


async def chat_stream(request: Request, ui: Ui, user: User) -> Response:
    """``POST /v1/ask`` as an event stream for the browser's EventSource (which only GETs)."""
    if not _csrf_query(request, user):
        return _stream(_one(_problem_event(403, "reload the page and ask again.")))
    question = request.query_params.get("question", "").strip()
    body: dict[str, Any] = {"question": question}
    if request.query_params.get("conversation"):
        body["conversation"] = request.query_params["conversation"]
    return _stream(_relay(ui.api(request, user), "POST", "/v1/ask", body))


async def _one(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


async def start_run(request: Request, ui: Ui, user: User) -> Response:
    form = await request.form()
    body: dict[str, Any] = {"goal": str(form.get("goal") or "").strip()}
    if form.get("dry_run") == "on":
        body["dry_run"] = True
    if form.get("read_only") == "on":
        body["read_only"] = True
    answer = await ui.api(request, user).post("/v1/runs", body)
    if not answer.ok:
        return ui.error(request, user, answer.status, answer.problem())
    return RedirectResponse(f"/ui/agent/runs/{answer.json()['id']}", status_code=303)


async def show_run(request: Request, ui: Ui, user: User) -> Response:
    rid = request.path_params["id"]
    answer = await ui.api(request, user).get(f"/v1/runs/{rid}")
    if not answer.ok:
        return ui.error(request, user, answer.status, answer.problem())
    return ui.render(request, "run.html", user, run=answer.json())


async def run_events(request: Request, ui: Ui, user: User) -> Response:
    rid = request.path_params["id"]
    return _stream(_relay(ui.api(request, user), "GET", f"/v1/runs/{rid}/events"))


async def approve_run(request: Request, ui: Ui, user: User) -> Response:
    rid = request.path_params["id"]
    form = await request.form()
    approve = form.get("approve") == "yes"
    answer = await ui.api(request, user).post(f"/v1/runs/{rid}/approve", {"approve": approve})
    if not answer.ok:
        return ui.render(request, "_note.html", user, status=200, error=answer.problem())
    word = "Approved" if approve else "Refused"
    return ui.render(request, "_note.html", user, note=f"{word}; the run goes on below.")


def routes(page: Callable[[Any], Callable[[Request], Awaitable[Response]]]) -> list[Route]:
    return [
        Route("/ui/agent", page(agent)),
        Route("/ui/agent/chat/stream", page(chat_stream)),
        Route("/ui/agent/runs", page(start_run), methods=["POST"]),
        Route("/ui/agent/runs/{id}", page(show_run)),
        Route("/ui/agent/runs/{id}/events", page(run_events)),
        Route("/ui/agent/runs/{id}/approve", page(approve_run), methods=["POST"]),
    ]
