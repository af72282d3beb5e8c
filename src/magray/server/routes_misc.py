"""``/v1/tasks``, ``/v1/models``, ``/v1/providers``, ``/v1/usage`` and ``/v1/audit``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from magray.server.deps import Admin, Reader, Svc, Writer
from magray.server.schemas import TaskIn

router = APIRouter(prefix="/v1")


@router.get("/tasks", tags=["tasks"], summary="Tasks by priority then age.")
def list_tasks(
    svc: Svc,
    who: Reader,
    state: Annotated[list[str], Query(max_length=10)] = [],  # noqa: B006
) -> list[dict[str, Any]]:
    from magray.tasks import parse_state
    from magray.views import task_json

    states = [parse_state(s) for s in state]
    tenant = svc.tenant(who)
    with tenant.lock:
        tasks = tenant.runtime.tasks.tasks(states)
    return [task_json(t) for t in tasks]


@router.post("/tasks", tags=["tasks"], status_code=201, summary="Add a task.")
def add_task(task: TaskIn, svc: Svc, who: Writer) -> dict[str, Any]:
    from magray.views import task_json

    tenant = svc.tenant(who)
    with tenant.lock:
        memory_ids = tenant.memory.resolve_ids(task.memory) if task.memory else []
        made = tenant.runtime.tasks.add(
            task.title,
            priority=task.priority,
            depends_on=task.depends_on,
            notes=task.notes,
            memory_ids=memory_ids,
        )
    return task_json(made)


@router.get("/tasks/{id}", tags=["tasks"], summary="One task and its dependents.")
def show_task(id: str, svc: Svc, who: Reader) -> dict[str, Any]:
    from magray.views import task_json

    tenant = svc.tenant(who)
    with tenant.lock:
        task = tenant.runtime.tasks.resolve(id)
        dependents = tenant.runtime.tasks.dependents(task.id)
    return {**task_json(task), "dependents": dependents}


@router.post("/tasks/{id}/done", tags=["tasks"], summary="Mark a task done.")
def done_task(id: str, svc: Svc, who: Writer) -> dict[str, Any]:
    from magray.views import task_json

    tenant = svc.tenant(who)
    with tenant.lock:
        task = tenant.runtime.tasks.done(id)
    return task_json(task)


@router.delete("/tasks/{id}", tags=["tasks"], summary="Remove a task.")
def remove_task(
    id: str, svc: Svc, who: Writer, force: Annotated[bool, Query()] = False
) -> dict[str, Any]:
    tenant = svc.tenant(who)
    with tenant.lock:
        task = tenant.runtime.tasks.remove(id, force=force)
    return {"id": task.id, "removed": True}


@router.get("/models", tags=["models"], summary="Embedding and reranking models.")
def models(svc: Svc, who: Reader) -> list[dict[str, Any]]:
    from magray.embed.info import model_rows

    rows: list[dict[str, Any]] = model_rows(svc.settings)
    for row in rows:
        row.pop("path", None)
    return rows


@router.get("/providers", tags=["llm"], summary="Configured LLM providers and breaker state.")
def providers(svc: Svc, who: Reader) -> list[dict[str, Any]]:
    # ``describe`` reads the ledger on its own connection: no wait for a run on the LLM thread
    rows: list[dict[str, Any]] = svc.tenant(who).runtime.router.describe()
    return rows


@router.get("/usage", tags=["llm"], summary="LLM calls, tokens and cost per day (UTC).")
async def usage(
    svc: Svc, who: Reader, days: Annotated[int, Query(ge=1, le=3660)] = 7
) -> list[dict[str, Any]]:
    import asyncio

    since = (datetime.now(UTC) - timedelta(days=days - 1)).strftime("%Y-%m-%d")
    tenant = svc.tenant(who)

    def totals() -> list[dict[str, Any]]:
        return [asdict(r) for r in tenant.runtime.router.usage.totals(since)]

    return await asyncio.wrap_future(tenant.llm(totals))


@router.get("/audit", tags=["audit"], summary="The tenant's audit entries, newest last (admin).")
def audit(
    svc: Svc, who: Admin, limit: Annotated[int, Query(ge=1, le=10_000)] = 100
) -> list[dict[str, Any]]:
    return [e.to_json() for e in svc.chain.entries(tenant=who.tenant, limit=limit)]
