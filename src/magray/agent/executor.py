"""Running a plan: ready steps first, independent ones concurrently, each under the policy.

Every step goes through ``magray.tools.invoke.invoke`` (policy decision, asking, audit).
A step whose dependencies did not all succeed is skipped. A denied step stops the plan:
nothing new starts, and what has not run is skipped with the denial as the reason. A
transient failure is retried once: a ``ToolError`` raised with ``transient=True``, or a
failed ``ToolResult`` whose ``data`` has ``"transient": true`` or ``"timed_out": true``.

Ctrl-C (``KeyboardInterrupt`` in the thread that called ``run``) stops the plan at once:
nothing new starts and nothing is retried, the process trees the steps started are killed
(``magray.agent.interrupt``), the running steps end as ``interrupted`` and ``Interrupted``
is raised with every step's result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from magray.agent.interrupt import Children, sigint_ignored
from magray.agent.plan import Plan, Step, resolve
from magray.errors import DeniedError, MagrayError, Surface, ToolError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext, ToolResult
from magray.tools.invoke import Confirm, Invocation, invoke
from magray.tools.policy import Policy
from magray.tools.registry import ToolRegistry

OK, FAILED, DENIED, SKIPPED, ERROR = "ok", "failed", "denied", "skipped", "error"
INTERRUPTED = "interrupted"
#: how long an interrupted run waits for its steps' threads once their processes are killed
#: (a tool blocked outside a process cannot be stopped; the run then leaves it behind)
GRACE_S = 3.0


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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped the plan; ``results`` are every step's outcome, in plan order.

    ``abandoned`` is true when some step's thread was still busy after its processes were
    killed (a tool blocked outside any process); a CLI should then exit without waiting.
    """

    def __init__(self, results: list[StepResult], abandoned: bool = False) -> None:
        super().__init__("interrupted")
        self.results = results
        self.abandoned = abandoned


class Executor:
    """Runs a validated plan with ``invoke``; ``confirm`` answers the policy's asks; a
    step's error is worded for ``surface`` (the HTTP API names no CLI option)."""

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
        surface: Surface = "cli",
    ) -> None:
        self.registry = registry
        self.ctx = ctx if step_timeout is None else replace(ctx, timeout=step_timeout)
        self.policy = policy
        self.audit = audit
        self.confirm = confirm
        self.retries = retries
        self.max_workers = max_workers
        self.clock = clock
        self.surface = surface
        self._stop = threading.Event()

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
                why = exc.message_for(self.surface)
                return self._finish(step, args, DENIED, "deny", "", why, started, attempts)
            except MagrayError as exc:
                if self._stop.is_set():
                    return self._interrupted(step, args, None, "", started, attempts)
                if attempts <= self.retries and is_transient(None, exc):
                    continue
                why = exc.message_for(self.surface)
                return self._finish(step, args, ERROR, None, "", why, started, attempts)
            res = done.result
            if self._stop.is_set():  # killed by Ctrl-C: never retried, whatever it says
                return self._interrupted(step, args, done.decision, res.output, started, attempts)
            if res.ok:
                return self._finish(
                    step, args, OK, done.decision, res.output, None, started, attempts
                )
            if attempts <= self.retries and is_transient(res, None):
                continue
            return self._finish(
                step, args, FAILED, done.decision, res.output, res.error, started, attempts
            )

    def _interrupted(
        self,
        step: Step,
        args: Mapping[str, Any],
        decision: str | None,
        output: str,
        started: float,
        attempts: int,
    ) -> StepResult:
        why = "interrupted (Ctrl-C); its processes were killed"
        return self._finish(step, args, INTERRUPTED, decision, output, why, started, attempts)

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
        """Run ``plan``; results come back in the plan's step order.

        Raises:
            Interrupted: Ctrl-C; it carries the results of the steps that ran.
        """
        results: dict[str, StepResult] = {}
        outputs: dict[str, str] = {}
        denied: StepResult | None = None
        running: dict[Future[StepResult], Step] = {}
        children = Children()
        children.snapshot()
        self._stop.clear()
        pool = ThreadPoolExecutor(max_workers=self.max_workers)
        try:
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
        except KeyboardInterrupt:
            with sigint_ignored():
                abandoned = self._cancel(children, running, results)
                pool.shutdown(wait=not abandoned, cancel_futures=True)
            for step in plan.steps:
                if step.id not in results:
                    results[step.id] = StepResult(
                        step.id, step.tool, SKIPPED, error="not run: the run was interrupted"
                    )
            raise Interrupted([results[s.id] for s in plan.steps], abandoned) from None
        pool.shutdown(wait=True)
        for step in plan.steps:
            if step.id not in results:
                why = (
                    f"not run: the plan stopped because step {denied.id} was denied"
                    if denied
                    else "not run"
                )
                results[step.id] = StepResult(step.id, step.tool, SKIPPED, error=why)
        return [results[s.id] for s in plan.steps]

    def _cancel(
        self,
        children: Children,
        running: Mapping[Future[StepResult], Step],
        results: dict[str, StepResult],
    ) -> bool:
        """Stop everything after Ctrl-C; True when some step's thread could not be waited for."""
        self._stop.set()
        children.kill()
        finished, busy = wait(running, timeout=GRACE_S)
        for future in finished:  # a step that ended before the kill keeps its own status
            result = future.result()
            results[result.id] = result
        for future in busy:
            step = running[future]
            results[step.id] = StepResult(
                step.id, step.tool, INTERRUPTED, error="interrupted (Ctrl-C); left running"
            )
        return bool(busy)
