"""``/v1/runs``: the agent over HTTP (admin only: its tools act on the server's workspace).

``POST /v1/runs`` starts a run and answers its id; ``GET /v1/runs/{id}/events`` streams its
events (``plan``, ``approval``, ``steps``, ``result`` or ``error``) as server-sent events from
the first; ``POST /v1/runs/{id}/approve`` answers a plan that waits; ``GET /v1/runs/{id}``
is the run so far as JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import Field

from magray.server.deps import Admin, Svc
from magray.server.runs import Run, Runs
from magray.server.schemas import Body, Int, Words

router = APIRouter(prefix="/v1", tags=["runs"])
POLL = 0.05  # seconds between looks at a run's events while streaming


class RunIn(Body):
    goal: Words = Field(min_length=1, max_length=20_000)
    provider: str | None = Field(None, max_length=200)
    max_steps: Int = Field(12, ge=1, le=100)
    max_replans: Int = Field(1, ge=0, le=10)
    read_only: bool = False
    dry_run: bool = False


class ApproveIn(Body):
    approve: bool


def runs_of(request: Request) -> Runs:
    state = request.app.state
    if not hasattr(state, "runs"):
        state.runs = Runs()
    runs: Runs = state.runs
    return runs


@router.post("/runs", status_code=202, summary="Start an agent run (admin).")
def start(body: RunIn, request: Request, svc: Svc, who: Admin) -> dict[str, Any]:
    from magray.agent.session import check_length
    from magray.llm.config import load_llm_config

    check_length(body.goal, "the goal")  # refused now (422), not as the run's first event
    tenant = svc.tenant(who)
    if body.provider is not None:  # refused now (422), not as the run's first event
        config = load_llm_config(tenant.runtime.settings)
        config.get(config.named(body.provider))
    options = body.model_dump(exclude={"goal"})
    run = runs_of(request).start(tenant, body.goal, options)
    return {"id": run.id, "events": f"/v1/runs/{run.id}/events"}


@router.get("/runs/{id}", summary="The run so far: its events and whether it waits.")
def show(id: str, request: Request, who: Admin) -> dict[str, Any]:
    return runs_of(request).get(id, who.tenant).to_json()


@router.post("/runs/{id}/approve", summary="Approve or refuse the plan a run waits on.")
def approve(id: str, body: ApproveIn, request: Request, who: Admin) -> dict[str, Any]:
    run = runs_of(request).get(id, who.tenant)
    run.answer(body.approve)
    return {"id": run.id, "approved": body.approve}


def the_run(id: str, request: Request, who: Admin) -> Run:
    """The caller's run ``id`` (404 before any event is sent when it is not theirs)."""
    return runs_of(request).get(id, who.tenant)


@router.get(
    "/runs/{id}/events",
    summary="The run's events as server-sent events, from the first.",
    response_class=EventSourceResponse,
)
async def events(run: Annotated[Run, Depends(the_run)]) -> AsyncIterable[ServerSentEvent]:
    sent = 0
    while True:
        with run.changed:
            fresh = run.events[sent:]
            done = run.finished
        for name, data in fresh:
            sent += 1
            yield ServerSentEvent(data=data, event=name, id=str(sent))
        if done and not fresh:
            return
        if not fresh:
            await asyncio.sleep(POLL)
