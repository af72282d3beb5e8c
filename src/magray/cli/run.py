"""`magray run TASK`: one agent turn that acts — recall, plan, approve, execute, check.

The turn (``magray.agent.turn``) recalls the memories relevant to the task and plans with
them in context, shows the plan and asks for approval, executes it under the policy, asks
the critic and re-plans when the goal is not met.

Exit codes: 0 done, 1 the goal was not met (or the plan was not approved), 2 bad
arguments, 4 a step was denied by the policy (including an ask with nobody to ask), 5 the
LLM failed, 6 the model gave no usable plan, 130 interrupted (Ctrl-C). Whatever the exit,
once a step has run the report (``--json``: the JSON report) is printed with it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from magray.cli.context import read_text
from magray.errors import MagrayError, UsageError

if TYPE_CHECKING:
    from magray.agent.approvals import Choice
    from magray.agent.executor import StepResult
    from magray.agent.plan import Plan
    from magray.memory.records import Hit, NewRecord, Query
    from magray.runtime import Runtime
    from magray.tasks.graph import TaskGraph
    from magray.tools.base import ToolContext
    from magray.tools.registry import ToolRegistry


def _interactive() -> bool:
    """Whether a person can be asked (standard input and error are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


class _QuietMemory:
    """Recalls and remembers through the runtime's memory, opened on first use; a failure is
    a warning (the run plans without memories, or is not remembered), never a failed run."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def recall(self, query: Query, *, record_access: bool = True) -> list[Hit]:
        from magray.cli import render

        try:
            return self.rt.memory.recall(query, record_access=record_access)
        except MagrayError as exc:
            render.warn(f"planning without memories: {exc.message}")
            return []

    def remember(self, item: NewRecord) -> object:
        from magray.cli import render

        try:
            return self.rt.memory.remember(item)
        except MagrayError as exc:
            render.warn(f"the run was not remembered: {exc.message}")
            return None


def run(
    task: str = typer.Argument(..., help="What to do, or '-' to read standard input."),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Approve the plan and the policy's asks (never a deny)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan and preview; change nothing."),
    read_only: bool = typer.Option(False, "--read-only", help="Deny writes, commands, network."),
    max_steps: int = typer.Option(12, "--max-steps", min=1, help="Most steps in one plan."),
    max_replans: int = typer.Option(1, "--max-replans", min=0, help="Re-plans after failure."),
    provider: str | None = typer.Option(None, "--provider", help="Provider name (llm list)."),
    root: list[Path] = typer.Option(
        [],
        "--root",
        help="Allowed workspace root (repeatable; default: tools.roots, else the current folder).",
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, help="Seconds per step (default: tools.timeout, 60)."
    ),
    token_budget: int | None = typer.Option(
        None, "--token-budget", min=1, help="Stop planning once the run used this many tokens."
    ),
    save_tasks: bool = typer.Option(
        False, "--save-tasks", help="Also store the final plan as tasks (magray tasks list)."
    ),
    no_memory: bool = typer.Option(False, "--no-memory", help="Do not remember the run."),
    no_mcp: bool = typer.Option(
        False, "--no-mcp", help="Leave out the tools of configured MCP servers."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the run report as JSON."),
) -> None:
    """Do a task with the agent: plan, approve, run the steps under the policy, check, re-plan.

    Example: magray run "fix the typo in README.md and commit it" --yes
    """
    from magray.agent.approvals import Approvals
    from magray.agent.assemble import AgentOptions
    from magray.agent.plan import describe
    from magray.agent.session import check_length
    from magray.agent.turn import AgentTurn
    from magray.cli.context import runtime
    from magray.tools.policy import Mode

    goal = read_text(task).strip()
    if not goal:
        raise UsageError("the task is empty; say what to do, or pipe it in with '-'.")
    check_length(goal, "the task")
    rt = runtime()
    ctx = rt.tool_context(root, timeout)
    registry = rt.tool_registry(mcp=not no_mcp)
    policy = rt.policy(Mode(yes=yes, read_only=read_only, dry_run=dry_run))
    interactive = _interactive()
    asker = _TerminalAsker(registry, ctx) if interactive else None
    approvals = Approvals(asker, registry, yes=yes or dry_run)
    plans = {"shown": 0}

    def approve(plan: Plan) -> bool:
        title = "Plan for" if not plans["shown"] else f"Re-plan {plans['shown']} for"
        plans["shown"] += 1
        typer.echo(f"{title}: {plan.goal}\n{describe(plan)}", err=True)
        return approvals.approve(plan)

    memory = None if no_memory else _QuietMemory(rt)
    with rt:
        options = AgentOptions(
            approve=approve,
            confirm=approvals.confirm if interactive else None,
            memory=memory,
            provider=provider,
            max_steps=max_steps,
            max_replans=max_replans,
            token_budget=token_budget,
            on_results=None if json_out else partial(_show_steps, dry_run=dry_run),
        )
        agent = rt.agent(registry, ctx, policy, options)
        turn = AgentTurn(rt.session(memory), agent, answer_from_planner=True, log_runs=False)
        report = turn.take(goal, provider=provider).run
        assert report is not None  # a turn that may act always runs the agent
        out = report.to_dict()
        if save_tasks and report.plan is not None:
            done = set() if dry_run else report.succeeded()
            out["tasks"] = _save_tasks(rt.tasks, report.plan, done)
    from magray.cli.app import error_line

    if json_out:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
    elif report.denied is None and report.error is None and not report.interrupted:
        typer.echo(report.result)
    if report.interrupted:
        error_line(report.result)
        if report.abandoned:  # a tool blocked outside any process: do not wait for it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(130)
        raise typer.Exit(130)
    if report.error is not None:
        error_line(report.error.message)
        raise typer.Exit(report.error.exit_code)
    if report.denied is not None:
        if not json_out:
            error_line(report.result)
        raise typer.Exit(4)
    if not report.approved or not report.done:
        raise typer.Exit(1)


class _TerminalAsker:
    """Asks on the terminal (stderr): a plan once, showing what each acting step will change
    (its diff or command line), then any ask the plan did not cover."""

    def __init__(self, registry: ToolRegistry, ctx: ToolContext) -> None:
        self.registry = registry
        self.ctx = ctx

    def approve(self, plan: Plan, tools: frozenset[str]) -> Choice:
        from magray.agent.approvals import Choice
        from magray.agent.preview import plan_previews, render_previews

        previews = plan_previews(plan, self.registry, self.ctx)
        if previews:
            typer.echo(f"What it will change:\n{render_previews(previews)}", err=True)
        ok = typer.confirm("Run this plan?", default=False, err=True)
        return Choice.YES if ok else Choice.NO

    def confirm(self, tool: str, preview: str) -> bool:
        typer.echo(f"{tool} wants to do:\n{preview}", err=True)
        return typer.confirm("Allow it?", default=False, err=True)


def _show_steps(results: Sequence[StepResult], *, dry_run: bool) -> None:
    """Each step's outcome on stderr as a round finishes (with the preview in a dry run)."""
    for step in results:
        line = f"{step.id} {step.tool}: {step.status}"
        if step.error and step.status != "denied":  # a denial is reported once, at the end
            line += f" — {step.error}"
        typer.echo(line, err=True)
        if dry_run and step.status == "ok" and step.output:
            typer.echo(step.output.rstrip("\n"), err=True)


def _save_tasks(graph: TaskGraph, plan: Plan, done: set[str]) -> list[str]:
    """Store ``plan`` in ``graph``, the steps in ``done`` as done; ids in step order."""
    from magray.tasks.model import PlanStep, TaskState, one_line

    steps = [
        PlanStep(
            id=s.id,
            title=one_line(f"{s.tool}: {s.why or plan.goal}")[:200],
            depends_on=s.depends_on,
            notes=json.dumps(dict(s.args), ensure_ascii=False),
        )
        for s in plan.steps
    ]
    tasks = graph.save_plan(steps)
    for step, task in zip(plan.steps, tasks, strict=True):
        if step.id in done:
            graph.set_state(task.id, TaskState.DONE)
    return [t.id for t in tasks]
