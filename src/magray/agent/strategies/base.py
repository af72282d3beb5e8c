"""What every planning strategy shares: the protocol, its outcome and the prompt parts.

A strategy turns a goal into a validated ``Plan`` or a direct answer, repairing invalid
plans with the model at most ``max_repairs`` times. It never reports success for nothing:
an empty answer is asked again, and a strategy that still has no usable plan raises
``PlanError``. A model that calls a tool directly instead of submitting a plan (common with
OpenAI-compatible local servers) has the call taken as a one-step plan, validated as usual.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from magray.agent.plan import Plan, plan_from_json, validate
from magray.agent.untrusted import RULE
from magray.errors import PROVIDER, Part, PlanError, UsageError
from magray.llm.base import Completion, Provider, Request, ToolCall, Usage
from magray.tools.registry import ToolRegistry

SUBMIT = "submit_plan"

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "short unique id, e.g. s1"},
                    "tool": {"type": "string", "description": "a tool name from the list"},
                    "args": {"type": "object", "description": "the tool's arguments"},
                    "depends_on": {"type": "array", "items": {"type": "string"}},
                    "why": {"type": "string"},
                },
                "required": ["id", "tool", "args"],
            },
        }
    },
    "required": ["steps"],
}

RULES = (
    "You are MAGRAY's planner. If the request needs no tool, answer it directly in plain "
    "text. Otherwise submit a plan: steps with a unique id, a tool, its args, depends_on "
    "(ids of steps that must finish first; steps without a dependency between them run in "
    "parallel) and why. To use an earlier step's output in an argument write "
    "{{steps.<id>.output}} and list that step in depends_on. Paths are relative to the "
    "workspace.\n\n" + RULE
)

EMPTY = "Your answer was empty. Submit a plan of tool steps, or answer in plain text."


class LLM(Protocol):
    """What the planner and critic need from the LLM layer (the router implements it)."""

    def provider(self, name: str | None = None) -> Provider: ...

    def complete(self, request: Request, provider: str | None = None) -> Completion: ...


@dataclass(frozen=True, slots=True)
class Planned:
    """The planner's outcome: a valid plan, or a direct answer (never empty)."""

    plan: Plan | None
    answer: str | None
    usage: Usage
    repairs: int = 0


class StrategyBase:
    """What every strategy holds: the LLM, the tools, the provider, the repair budget."""

    def __init__(
        self,
        llm: LLM,
        registry: ToolRegistry,
        *,
        provider: str | None = None,
        max_repairs: int = 2,
        max_steps: int | None = None,
    ) -> None:
        self.llm = llm
        self.registry = registry
        self.provider = provider
        self.max_repairs = max_repairs
        self.max_steps = max_steps


class Strategy(Protocol):
    """One way of asking a model for a plan (native tools, JSON protocol, worked examples)."""

    name: str

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        """A plan for ``goal``; ``context`` says what went wrong before, ``memories`` what
        is remembered that may help (both already delimited as data where untrusted).

        Raises:
            PlanError: no valid plan after the repairs, or an empty answer every time.
            ProviderError: the LLM could not be reached.
        """
        ...


def tool_catalogue(registry: ToolRegistry) -> str:
    lines = ["Tools:"]
    for tool in registry:
        schema = json.dumps(tool.schema().get("properties", {}), separators=(",", ":"))
        lines.append(f"- {tool.name} ({tool.risk.value}): {tool.description} args={schema}")
    return "\n".join(lines)


def first_json_object(text: str) -> Any | None:
    """The first JSON object in ``text``, or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def user_prompt(goal: str, context: str = "", memories: str = "") -> str:
    """The request with what is remembered and what happened so far."""
    parts = [goal]
    if memories:
        parts.append(f"Remembered (may help choose arguments):\n{memories}")
    if context:
        parts.append(f"What happened so far:\n{context}")
    return "\n\n".join(parts)


def arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return {"steps": "not valid JSON"}


def direct_calls(calls: Sequence[ToolCall]) -> dict[str, Any]:
    """Tool calls made directly (not through ``submit_plan``) as a plan of independent steps."""
    steps = [
        {"id": f"s{i}", "tool": c.name, "args": arguments(c), "depends_on": []}
        for i, c in enumerate(calls, 1)
    ]
    return {"steps": steps}


def as_plan_json(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """A JSON answer as a plan: ``{"steps": …}`` as it is, a lone tool call as one step.

    Chat models asked for a plan sometimes answer with one call in the shape of their
    function-calling format: ``{"tool": …, "args": …}`` or ``{"name": …, "arguments": …}``.
    """
    if "steps" in raw:
        return raw
    name = raw.get("tool", raw.get("name"))
    args = raw.get("args", raw.get("arguments", raw.get("parameters")))
    if isinstance(name, str) and isinstance(args, Mapping | str):
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                args = {}
        return {"steps": [{"id": "s1", "tool": name, "args": args, "depends_on": []}]}
    return raw


def check(
    goal: str, raw: Any, registry: ToolRegistry, max_steps: int | None
) -> tuple[Plan | None, list[str]]:
    """The plan in ``raw`` and its problems (empty when it can run)."""
    try:
        plan = plan_from_json(goal, raw)
    except UsageError as exc:
        return None, [exc.message.rstrip(".")]
    return plan, validate(plan, registry, max_steps=max_steps)


def still_invalid(problems: Sequence[str], repairs: int, hint: Sequence[Part] = ()) -> PlanError:
    if not problems:
        return PlanError(
            f"the model gave an empty answer {repairs + 1} times; try again, or plan with "
            "another provider (",
            PROVIDER,
            ").",
        )
    return PlanError(
        f"the model's plan stayed invalid after {repairs} repairs: {'; '.join(problems)}; ",
        *(hint or ("rephrase the task, or plan with another provider",)),
        ".",
    )
