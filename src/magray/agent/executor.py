"""Running a plan: ready steps first, independent ones concurrently, each under the policy.

Every step goes through ``magray.tools.invoke.invoke`` (policy decision, asking, audit).
A step whose dependencies did not all succeed is skipped. A denied step stops the plan:
nothing new starts, and what has not run is skipped with the denial as the reason. A
transient failure is retried once: a ``ToolError`` raised with ``transient=True``, or a
failed ``ToolResult`` whose ``data`` has ``"transient": true`` or ``"timed_out": true``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from magray.agent.plan import Plan, Step, resolve
from magray.errors import DeniedError, MagrayError, ToolError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext, ToolResult
from magray.tools.invoke import Confirm, Invocation, invoke
from magray.tools.policy import Policy
from magray.tools.registry import ToolRegistry

OK, FAILED, DENIED, SKIPPED, ERROR = "ok", "failed", "denied", "skipped", "error"


@dataclass(frozen=True, slots=True)
class StepResult:
    """What happened to one step; ``started``/``finished`` are ``time.time()`` stamps."""

    id: str
    tool: str
    status: str
    decision: str | None = None
    output: str = ""
    error: str | None = None
    duration_ms: int = 0
    attempts: int = 0
    started: float | None = None
    finished: float | None = None
    args: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "status": self.status,
            "decision": self.decision,
            "output": self.output,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


def is_transient(result: ToolResult | None, exc: MagrayError | None) -> bool:
    """Worth one more try: a ``ToolError(transient=True)``, or a failed result whose
    ``data`` says ``transient`` or ``timed_out`` (or whose error says it timed out)."""
    if exc is not None:
        return isinstance(exc, ToolError) and exc.transient
    if result is not None and not result.ok:
        data = result.data if isinstance(result.data, Mapping) else {}
        marked = bool(data.get("transient")) or bool(data.get("timed_out"))
        return marked or "timed out" in (result.error or "")
    return False


class Executor:
    """Runs a validated plan with ``invoke``; ``confirm`` answers the policy's asks."""

    def __init__(
        self,
        registry: ToolRegistry,
        ctx: ToolContext,
        policy: Policy,
        audit: AuditLog,
        *,
        confirm: Confirm | None = None,
        step_timeout: float | None = None,
        retries: int = 1,
        max_workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.ctx = ctx if step_timeout is None else replace(ctx, timeout=step_timeout)
        self.policy = policy
        self.audit = audit
        self.confirm = confirm
        self.retries = retries
        self.max_workers = max_workers
        self.clock = clock

    def _one(self, step: Step, outputs: Mapping[str, str]) -> StepResult:
        tool = self.registry.get(step.tool)
        args = resolve(dict(step.args), outputs)
        started = self.clock()
        attempts = 0
        while True:
            attempts += 1
            done: Invocation | None = None
            try:
                done = invoke(tool, args, self.ctx, self.policy, self.audit, self.confirm)
            except DeniedError as exc:
                return self._finish(step, args, DENIED, "deny", "", exc.message, started, attempts)
            except MagrayError as exc:
                if attempts <= self.retries and is_transient(None, exc):
                    continue
                return self._finish(step, args, ERROR, None, "", exc.message, started, attempts)
            res = done.result
            if res.ok:
                return self._finish(
                    step, args, OK, done.decision, res.output, None, started, attempts
                )
            if attempts <= self.retries and is_transient(res, None):
                continue
            return self._finish(
                step, args, FAILED, done.decision, res.output, res.error, started, attempts
            )

    def _finish(
        self,
        step: Step,
        args: Mapping[str, Any],
        status: str,
        decision: str | None,
        output: str,
        error: str | None,
        started: float,
        attempts: int,
    ) -> StepResult:
        finished = self.clock()
        return StepResult(
            step.id,
            step.tool,
            status,
            decision,
            output,
            error,
            int((finished - started) * 1000),
            attempts,
            started,
            finished,
            args,
        )

    def run(self, plan: Plan) -> list[StepResult]:
        """Run ``plan``; results come back in the plan's step order."""
        results: dict[str, StepResult] = {}
        outputs: dict[str, str] = {}
        denied: StepResult | None = None
        running: dict[Future[StepResult], Step] = {}
        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            while True:
                if denied is None:
                    for step in plan.steps:
                        if step.id in results or step.id in {s.id for s in running.values()}:
                            continue
                        deps = [results.get(d) for d in step.depends_on]
                        if any(r is not None and r.status != OK for r in deps):
                            bad = next(r for r in deps if r is not None and r.status != OK)
                            results[step.id] = StepResult(
                                step.id,
                                step.tool,
                                SKIPPED,
                                error=f"not run: step {bad.id} {bad.status}",
                            )
                        elif all(r is not None for r in deps):
                            running[pool.submit(self._one, step, dict(outputs))] = step
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    result = future.result()
                    results[result.id] = result
                    if result.status == OK:
                        outputs[result.id] = result.output
                    elif result.status == DENIED and denied is None:
                        denied = result
        for step in plan.steps:
            if step.id not in results:
                why = (
                    f"not run: the plan stopped because step {denied.id} was denied"
                    if denied
                    else "not run"
                )
                results[step.id] = StepResult(step.id, step.tool, SKIPPED, error=why)
        return [results[s.id] for s in plan.steps]
