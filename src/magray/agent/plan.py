"""A plan: a DAG of tool steps, validated against the tools' schemas.

A step's arguments may quote an earlier step's output as ``{{steps.<id>.output}}``; the
reference is replaced by that step's (stripped) output text when the step runs, and the
referenced step must be one of its ``depends_on``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from magray.errors import MagrayError, UsageError
from magray.tools.registry import ToolRegistry

REFERENCE = re.compile(r"\{\{\s*steps\.([A-Za-z0-9_\-]+)\.output\s*\}\}")


@dataclass(frozen=True, slots=True)
class Step:
    """One tool call of a plan."""

    id: str
    tool: str
    args: Mapping[str, Any]
    depends_on: tuple[str, ...] = ()
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tool": self.tool,
            "args": dict(self.args),
            "depends_on": list(self.depends_on),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """What the agent means to do for ``goal``."""

    goal: str
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


def plan_from_json(goal: str, raw: Any) -> Plan:
    """A Plan from decoded JSON ``{"steps": [...]}``; UsageError when the shape is wrong."""
    if isinstance(raw, Mapping):
        raw = raw.get("steps")
    if not isinstance(raw, list):
        raise UsageError("a plan is an object with a list of steps under 'steps'.")
    steps: list[Step] = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, Mapping):
            raise UsageError(f"step {i} is not an object.")
        args = item.get("args", {})
        deps = item.get("depends_on", []) or []
        if not isinstance(args, Mapping):
            raise UsageError(f"step {i}: args must be an object.")
        if not isinstance(deps, list) or not all(isinstance(d, str | int) for d in deps):
            raise UsageError(f"step {i}: depends_on must be a list of step ids.")
        steps.append(
            Step(
                id=str(item.get("id") or f"s{i}"),
                tool=str(item.get("tool", "")),
                args=dict(args),
                depends_on=tuple(str(d) for d in deps),
                why=str(item.get("why", "")),
            )
        )
    return Plan(goal, tuple(steps))


def references(value: Any) -> set[str]:
    """Step ids referenced anywhere inside ``value``."""
    if isinstance(value, str):
        return set(REFERENCE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


def resolve(value: Any, outputs: Mapping[str, str]) -> Any:
    """``value`` with every ``{{steps.<id>.output}}`` replaced by that step's output."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: outputs.get(m.group(1), "").strip(), value)
    if isinstance(value, Mapping):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [resolve(v, outputs) for v in value]
    return value


def order(plan: Plan) -> list[Step]:
    """The steps in a dependency order; UsageError naming the steps of a cycle."""
    done: list[Step] = []
    seen: set[str] = set()
    left = list(plan.steps)
    while left:
        ready = [s for s in left if all(d in seen for d in s.depends_on)]
        if not ready:
            raise UsageError(f"the plan has a dependency cycle among {[s.id for s in left]}.")
        for s in ready:
            done.append(s)
            seen.add(s.id)
        left = [s for s in left if s.id not in seen]
    return done


def validate(plan: Plan, registry: ToolRegistry, *, max_steps: int | None = None) -> list[str]:
    """Every problem with ``plan`` (empty when it can run).

    Plain strings: no problem names a CLI option or command (tool argument errors name the
    tool's own fields), so the words are the same on every surface and a ``PlanError``
    built from them reads right in the server's runs too. A problem that needs surface
    words would have to keep its ``Words`` parts (``tests/agent/test_plan.py`` checks).
    """
    problems: list[str] = []
    if not plan.steps:
        problems.append("the plan has no steps")
    if max_steps is not None and len(plan.steps) > max_steps:
        problems.append(f"the plan has {len(plan.steps)} steps; at most {max_steps} are allowed")
    ids = [s.id for s in plan.steps]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        problems.append(f"step ids must be unique (repeated: {', '.join(dupes)})")
    for step in plan.steps:
        missing = [d for d in step.depends_on if d not in ids]
        if missing:
            problems.append(f"step {step.id}: depends_on names unknown steps {missing}")
        if step.id in step.depends_on:
            problems.append(f"step {step.id}: depends on itself")
        loose = sorted(references(step.args) - set(step.depends_on))
        if loose:
            problems.append(
                f"step {step.id}: references output of {loose} without listing it in depends_on"
            )
        if step.tool not in registry:
            problems.append(f"step {step.id}: unknown tool {step.tool!r}")
            continue
        try:
            registry.get(step.tool).parse(step.args)
        except MagrayError as exc:
            problems.append(f"step {step.id}: {exc.message.rstrip('.')}")
    if not problems:
        try:
            order(plan)
        except UsageError as exc:
            problems.append(exc.message.rstrip("."))
    return problems


def describe(plan: Plan | Sequence[Step]) -> str:
    """The plan as numbered lines for people."""
    steps = plan.steps if isinstance(plan, Plan) else plan
    lines = []
    for s in steps:
        after = f" (after {', '.join(s.depends_on)})" if s.depends_on else ""
        args = ", ".join(f"{k}={v!r}" for k, v in s.args.items())
        why = f"  — {s.why}" if s.why else ""
        lines.append(f"  {s.id}: {s.tool}({args}){after}{why}")
    return "\n".join(lines)
