"""Agent runs over HTTP: a run plans, waits for approval through the API, executes, reports.

A run lives on its tenant's LLM thread. Its events (``plan``, ``approval``, ``steps``,
``result``, ``error``) are kept in order so a client can stream them from the start at any
time. A plan with side effects waits for ``POST /v1/runs/{id}/approve``; no answer within
``APPROVAL_TIMEOUT`` seconds is a refusal. Runs are kept in memory only (the report itself
is remembered in the tenant's memory when the run worked, as ``magray run`` does).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from magray.errors import ConflictError, MagrayError, NotFoundError

if TYPE_CHECKING:
    from magray.agent.plan import Plan
    from magray.agent.runner import RunReport
    from magray.server.tenants import Tenant

APPROVAL_TIMEOUT = 600.0
MAX_RUNS = 1000


@dataclass
class Run:
    id: str
    tenant: str
    goal: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finished: bool = False
    waiting: bool = False
    decision: bool | None = None
    changed: threading.Condition = field(default_factory=threading.Condition)

    def emit(self, name: str, data: dict[str, Any], *, last: bool = False) -> None:
        with self.changed:
            self.events.append((name, data))
            self.finished = self.finished or last
            self.changed.notify_all()

    def answer(self, approve: bool) -> None:
        with self.changed:
            if not self.waiting:
                raise ConflictError(
                    f"run {self.id} is not waiting for an approval; GET /v1/runs/{self.id}"
                    " shows where it is."
                )
            self.decision = approve
            self.waiting = False
            self.changed.notify_all()

    def await_decision(self) -> bool:
        with self.changed:
            self.waiting = True
            self.changed.wait_for(lambda: self.decision is not None, APPROVAL_TIMEOUT)
            self.waiting = False
            return bool(self.decision)

    def to_json(self) -> dict[str, Any]:
        with self.changed:
            return {
                "id": self.id,
                "goal": self.goal,
                "finished": self.finished,
                "waiting_for_approval": self.waiting,
                "events": [{"event": n, "data": d} for n, d in self.events],
            }


class Runs:
    """The runs of this server process, by id; a run is visible only to its tenant."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str, tenant: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None or run.tenant != tenant:
            raise NotFoundError(
                f"no run {run_id!r} in this tenant; runs last as long as the server process"
                " that started them: start it again with POST /v1/runs."
            )
        return run

    def refuse_waiting(self) -> None:
        """Refuse every plan that waits for an approval (the server is shutting down)."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            with run.changed:
                if run.waiting:
                    run.decision = False
                    run.waiting = False
                    run.changed.notify_all()

    def start(self, tenant: Tenant, goal: str, options: dict[str, Any]) -> Run:
        run = Run(id=secrets.token_hex(8), tenant=tenant.name, goal=goal)
        with self._lock:
            if len(self._runs) >= MAX_RUNS:  # forget the oldest finished runs
                for rid in [r.id for r in self._runs.values() if r.finished][: MAX_RUNS // 10]:
                    del self._runs[rid]
            self._runs[run.id] = run
        tenant.llm(lambda: _execute(tenant, run, options))
        return run


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "goal": plan.goal,
        "steps": [
            {
                "id": s.id,
                "tool": s.tool,
                "args": dict(s.args),
                "depends_on": list(s.depends_on),
                "why": s.why,
            }
            for s in plan.steps
        ],
    }


def _execute(tenant: Tenant, run: Run, options: dict[str, Any]) -> None:
    """On the tenant's LLM thread: build the agent from the runtime and run it."""
    try:
        report = _agent(tenant, run, options).run(run.goal)
        run.emit("result", _report_json(report), last=True)
    except MagrayError as exc:
        from magray.server.problems import body, from_magray

        p = from_magray(exc)
        run.emit("error", body(p.status, p.slug, p.title, p.detail), last=True)
    except Exception as exc:
        from magray.server.problems import body

        run.emit("error", body(500, "internal", "Internal error", repr(exc)), last=True)


def _report_json(report: RunReport) -> dict[str, Any]:
    data: dict[str, Any] = report.to_dict()
    data["approved"] = report.approved
    return data


def _agent(tenant: Tenant, run: Run, options: dict[str, Any]) -> Any:
    from magray.agent.assemble import AgentOptions
    from magray.tools.base import Risk
    from magray.tools.policy import Mode

    rt = tenant.runtime
    registry = rt.tool_registry(mcp=False)
    mode = Mode(read_only=bool(options.get("read_only")), dry_run=bool(options.get("dry_run")))
    approved = {"yes": False}

    def acts(plan: Plan) -> bool:
        """Whether a step of ``plan`` does more than read."""
        for s in plan.steps:
            tool = registry.get(s.tool)
            if tool.risk_for(tool.parse(s.args)) is not Risk.READ:
                return True
        return False

    ctx = rt.tool_context()

    def approve(plan: Plan) -> bool:
        from magray.agent.preview import plan_previews

        approved["yes"] = False  # a yes answers this plan only, never a re-plan's asks
        needs = acts(plan) and not mode.dry_run
        event: dict[str, Any] = {**_plan_json(plan), "needs_approval": needs}
        if needs:  # what the approver is asked about: each acting step's diff or argv
            shown = plan_previews(plan, registry, ctx, surface="api")
            event["previews"] = [p.to_dict() for p in shown]
        run.emit("plan", event)
        if not needs:
            return True
        run.emit("approval", {"waiting": True})
        approved["yes"] = run.await_decision()
        run.emit("approval", {"waiting": False, "approved": approved["yes"]})
        return approved["yes"]

    def confirm(name: str, preview: str) -> bool:
        return approved["yes"]

    def on_results(results: Any) -> None:
        run.emit(
            "steps",
            {"steps": [{"id": s.id, "tool": s.tool, "status": s.status} for s in results]},
        )

    how = AgentOptions(
        approve=approve,
        confirm=confirm,
        memory=tenant.memory,
        provider=options.get("provider"),
        max_steps=options.get("max_steps", 12),
        max_replans=options.get("max_replans", 1),
        on_results=on_results,
        examples=False,
        surface="api",
    )
    return rt.agent(registry, ctx, rt.policy(mode), how)
