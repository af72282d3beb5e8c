"""One agent run: plan → approve → execute → critic → re-plan (bounded) → remember.

Limits: ``max_steps`` per plan, ``max_replans`` re-plans after the critic says the goal is
not met, and ``token_budget`` over the sum of the LLM usage of the run. A denied step
stops the run at once (no re-plan): the report names the step and the reason.

The report never lies about what ran: Ctrl-C ends the run with ``interrupted`` set and the
steps that ran (their processes killed); an error after some steps ran (the critic's LLM
call failing, say) is kept in ``error`` beside those steps instead of losing them.
Only a run that worked is remembered, with its provenance: kind ``agent_run``, tags
``source:agent`` and ``run:succeeded``. A dry run (nothing ran), a plan that was not
approved, a direct answer (nothing checked it), a denied, failed, interrupted or unfinished
run store nothing: the planner recalls remembered runs as examples of what worked, and a
wrong plan stored as one would be planned again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from magray.agent.critic import Critic, step_report
from magray.agent.executor import DENIED, OK, Executor, Interrupted, StepResult
from magray.agent.plan import Plan
from magray.agent.planner import Planned, Planner
from magray.agent.session import AGENT_RUN, FROM_AGENT, RUN_SUCCEEDED
from magray.errors import MagrayError, PlanError, Surface
from magray.llm.base import Usage
from magray.memory.records import Layer, NewRecord, Source

#: shown each plan before it runs (side effects or not); returns whether it may run
Approve = Callable[[Plan], bool]
AGENT_SOURCE = "magray:agent-run"  # the source uri of agent-run memories


class Rememberer(Protocol):
    def remember(self, item: NewRecord) -> object: ...


@dataclass
class RunReport:
    goal: str
    plan: Plan | None = None
    steps: list[StepResult] = field(default_factory=list)
    result: str = ""
    replans: int = 0
    denied: StepResult | None = None
    approved: bool = True
    done: bool = False
    usage: Usage = field(default_factory=Usage)
    notes: list[str] = field(default_factory=list)
    #: Ctrl-C stopped the run (the CLI exits 130)
    interrupted: bool = False
    #: some step's thread was still busy after the interrupt (exit without waiting for it)
    abandoned: bool = False
    #: an error that ended the run after it started (e.g. the critic's LLM call failed)
    error: MagrayError | None = None
    #: the status of each step of ``plan`` in its last execution (empty: not run)
    plan_status: dict[str, str] = field(default_factory=dict)
    #: where the report is shown: the words of ``error`` and of ``result`` when it quotes one
    surface: Surface = "cli"

    def succeeded(self) -> set[str]:
        """Ids of the final plan's steps that ran and succeeded."""
        return {sid for sid, status in self.plan_status.items() if status == OK}

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "plan": [s.to_dict() for s in self.plan.steps] if self.plan else [],
            "steps": [s.to_dict() for s in self.steps],
            "result": self.result,
            "replans": self.replans,
            "done": self.done,
            "denied": self.denied.id if self.denied else None,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "notes": self.notes,
            "interrupted": self.interrupted,
            "error": self.error.message_for(self.surface) if self.error else None,
        }

    def summary(self) -> str:
        """The text remembered in the Interact layer."""
        lines = [f"Agent run: {self.goal}", f"Result: {self.result}"]
        if self.steps:
            lines.append(step_report(self.steps))
        return "\n".join(lines)


class Agent:
    def __init__(
        self,
        planner: Planner,
        executor: Executor,
        critic: Critic,
        *,
        approve: Approve | None = None,
        memory: Rememberer | None = None,
        max_replans: int = 1,
        token_budget: int | None = None,
        on_results: Callable[[list[StepResult]], None] | None = None,
        surface: Surface = "cli",
    ) -> None:
        self.planner = planner
        self.executor = executor
        self.critic = critic
        self.approve = approve
        self.memory = memory
        self.max_replans = max_replans
        self.token_budget = token_budget
        self.on_results = on_results
        self.surface = surface

    def _over_budget(self, report: RunReport) -> bool:
        return self.token_budget is not None and report.usage.total_tokens >= self.token_budget

    def run(self, goal: str, memories: str = "", planned: Planned | None = None) -> RunReport:
        """Do ``goal`` (``memories``: what recall found, given to the planner; ``planned``:
        the planner's first answer when the caller already asked for it).

        A run that worked (``worked``) is remembered as one ``agent_run`` record. An error
        before any step ran is raised; after steps ran it is kept in ``report.error`` with
        those steps.
        """
        report = RunReport(goal, surface=self.surface)
        try:
            self._run(report, memories, planned)
        except Interrupted as exc:
            report.steps.extend(exc.results)
            report.plan_status = {r.id: r.status for r in exc.results}
            self._interrupted(report)
            if self.on_results is not None:
                self.on_results(exc.results)
            if exc.abandoned:
                report.abandoned = True
                report.notes.append("a step could not be stopped and was left running.")
        except KeyboardInterrupt:
            self._interrupted(report)
        except MagrayError as exc:
            if not report.steps:
                raise
            report.error = exc
            report.done = False
            why = exc.message_for(self.surface)
            report.result = f"stopped after {len(report.steps)} step(s): {why}"
        self._remember(report)
        return report

    def _interrupted(self, report: RunReport) -> None:
        report.interrupted = True
        report.done = False
        ran = [r for r in report.steps if r.status not in ("skipped",)]
        report.result = f"interrupted (Ctrl-C) after {len(ran)} step(s) started."

    def _run(self, report: RunReport, memories: str, first: Planned | None) -> None:
        context = ""
        while True:
            planned = first or self.planner.plan(report.goal, context, memories)
            first = None
            report.usage = report.usage + planned.usage
            if planned.plan is None:
                if not (planned.answer or "").strip():  # strategies never return this
                    raise PlanError("the model gave neither a plan nor an answer; try again.")
                report.result = planned.answer or ""
                report.done = True
                return
            plan = report.plan = planned.plan
            if self.approve is not None and not self.approve(plan):
                report.approved = False
                report.result = "the plan was not approved; nothing was run."
                return
            report.plan_status = {}
            results = self.executor.run(plan)
            report.steps.extend(results)
            report.plan_status = {r.id: r.status for r in results}
            if self.on_results is not None:
                self.on_results(results)
            dry = self.executor.policy.mode.dry_run
            if dry and not any(r.status == DENIED for r in results):  # denials: below
                bad = next((r for r in results if r.status != OK), None)
                report.done = bad is None
                report.result = (
                    "dry run: the plan was previewed; nothing was changed."
                    if bad is None
                    else f"dry run: step {bad.id} ({bad.tool}) would fail: {bad.error}"
                )
                return
            denied = next((r for r in results if r.status == DENIED), None)
            if denied is not None:
                report.denied = denied
                report.result = f"stopped: step {denied.id} ({denied.tool}) was denied: " + (
                    denied.error or ""
                ).removeprefix("denied: ")
                return
            if self._over_budget(report):
                report.notes.append("token budget spent; the critic was not asked.")
                report.result = step_report(results)
                return
            verdict = self.critic.judge(report.goal, results)
            report.usage = report.usage + verdict.usage
            report.done = verdict.done
            report.result = verdict.answer or verdict.reason
            if verdict.done:
                return
            if report.replans >= self.max_replans:
                report.notes.append(f"goal not met after {report.replans} re-plan(s).")
                return
            if self._over_budget(report):
                report.notes.append("token budget spent; no re-plan.")
                return
            report.replans += 1
            context = (
                f"A previous plan did not meet the goal.\nSteps:\n{step_report(results)}\n"
                f"Critic: {verdict.reason}\nPlan again, avoiding what failed."
            )

    def worked(self, report: RunReport) -> bool:
        """Whether ``report`` is a run worth planning from: not a dry run, approved, not
        denied, interrupted or stopped by an error, the critic said done, and every step of
        the final plan ran and succeeded (a direct answer has no steps: nothing checked it).
        """
        final = report.plan.steps if report.plan is not None else ()
        return (
            not self.executor.policy.mode.dry_run
            and report.approved
            and report.done
            and not report.interrupted
            and report.error is None
            and report.denied is None
            and bool(final)
            and all(report.plan_status.get(step.id) == OK for step in final)
        )

    def _remember(self, report: RunReport) -> None:
        if self.memory is None or not self.worked(report):
            return
        self.memory.remember(
            NewRecord(
                text=report.summary(),
                layer=Layer.INTERACT,
                kind=AGENT_RUN,
                tags=("agent", FROM_AGENT, RUN_SUCCEEDED),
                source=Source(uri=AGENT_SOURCE),
            )
        )


def report_json(report: RunReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
