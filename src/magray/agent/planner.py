"""Intent and planning: the model either answers directly or submits a plan of tool steps.

Providers with native function calling (OpenAI, Anthropic) are offered one function,
``submit_plan``; chat models without it get a few-shot JSON protocol and the first JSON
object of their answer is taken as the plan; base models (the embedded local model) get a
completion prompt of the worked examples nearest the request and a JSON grammar
(``magray.agent.fewshot``). A plan that fails validation goes back to the model with the
problems listed, at most ``max_repairs`` times.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from magray.agent.fewshot import (
    MAX_STEPS,
    STOP,
    ExampleSelector,
    chain,
    completion_prompt,
    plan_schema,
    ungrounded,
)
from magray.agent.plan import Plan, plan_from_json, validate
from magray.errors import ProviderResponseError, UsageError
from magray.llm.base import (
    Completion,
    Message,
    Provider,
    Request,
    ToolCall,
    Usage,
    capabilities_of,
)
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

_RULES = (
    "You are MAGRAY's planner. If the request needs no tool, answer it directly in plain "
    "text. Otherwise submit a plan: steps with a unique id, a tool, its args, depends_on "
    "(ids of steps that must finish first; steps without a dependency between them run in "
    "parallel) and why. To use an earlier step's output in an argument write "
    "{{steps.<id>.output}} and list that step in depends_on. Paths are relative to the "
    "workspace."
)

_FEW_SHOT = (
    "Answer with one JSON object and nothing else when tools are needed, for example:\n"
    'Request: show the git status\n{"steps": [{"id": "s1", "tool": "git_status", "args": {}, '
    '"depends_on": [], "why": "see what changed"}]}\n'
    'Request: replace foo with bar in a.txt and commit\n{"steps": [{"id": "s1", "tool": '
    '"file_edit", "args": {"path": "a.txt", "search": "foo", "replace": "bar"}, '
    '"depends_on": []}, {"id": "s2", "tool": "git_add", "args": {"paths": ["a.txt"]}, '
    '"depends_on": ["s1"]}, {"id": "s3", "tool": "git_commit", "args": {"message": '
    '"Use bar"}, "depends_on": ["s2"]}]}\n'
    "Request: what is 2 + 2?\n4"
)


class LLM(Protocol):
    """What the planner and critic need from the LLM layer (the router implements it)."""

    def provider(self, name: str | None = None) -> Provider: ...

    def complete(self, request: Request, provider: str | None = None) -> Completion: ...


@dataclass(frozen=True, slots=True)
class Planned:
    """The planner's outcome: a valid plan, or a direct answer."""

    plan: Plan | None
    answer: str | None
    usage: Usage
    repairs: int = 0


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


class Planner:
    """Turns a goal into a validated plan (or a direct answer) through the LLM."""

    def __init__(
        self,
        llm: LLM,
        registry: ToolRegistry,
        *,
        provider: str | None = None,
        max_repairs: int = 2,
        max_steps: int | None = None,
        selector: ExampleSelector | None = None,
    ) -> None:
        self.llm = llm
        self.registry = registry
        self.selector = selector or ExampleSelector()
        self.provider = provider
        self.max_repairs = max_repairs
        self.max_steps = max_steps

    def native(self) -> bool:
        return capabilities_of(self.llm.provider(self.provider)).native_tools

    def base_model(self) -> bool:
        """The provider runs a base model: plan by worked examples and a JSON grammar."""
        return not capabilities_of(self.llm.provider(self.provider)).chat_template

    def _plan_by_examples(self, goal: str, context: str) -> Planned:
        """Few-shot completion with the nearest examples; greedy first, then sampled."""
        shots = self.selector.select(goal, self.registry)
        prompt = completion_prompt(goal, shots, context)
        steps = min(self.max_steps or MAX_STEPS, MAX_STEPS)
        schema = plan_schema(self.registry, steps, self.selector.candidates(shots))
        usage = Usage()
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            request = Request(
                (Message("user", prompt),),
                max_tokens=200,
                # greedy first; sampled on retries and re-plans (greedy would repeat the plan)
                temperature=0.0 if attempt == 0 and not context else 0.7,
                stop=STOP,
                completion=True,
                json_schema=schema,
            )
            done = self.llm.complete(request, self.provider)
            usage = usage + done.usage
            raw = first_json_object(done.text)
            if raw is None or ("steps" not in raw and "answer" in raw):
                answer = raw.get("answer") if raw is not None else done.text
                return Planned(None, str(answer or "").strip(), usage, attempt)
            if "steps" not in raw:
                problems = ["the answer was cut off before the plan was complete"]
                continue
            try:
                plan = plan_from_json(goal, chain(raw))
                problems = validate(plan, self.registry, max_steps=self.max_steps)
                problems = problems or ungrounded(plan, goal, self.registry)
            except UsageError as exc:
                problems = [exc.message.rstrip(".")]
            if not problems:
                return Planned(plan, None, usage, attempt)
        raise UsageError(
            f"the model's plan stayed invalid after {self.max_repairs} retries: "
            + "; ".join(problems)
            + "; name files exactly as they are, or plan with a stronger provider (--provider)."
        )

    def plan(self, goal: str, context: str = "") -> Planned:
        """Ask for a plan for ``goal``; ``context`` tells it what went wrong before.

        Raises:
            UsageError: the model kept proposing invalid plans after ``max_repairs`` repairs.
            ProviderError: the LLM could not be reached.
        """
        if self.base_model():
            return self._plan_by_examples(goal, context)
        native = self.native()
        system = f"{_RULES}\n\n{tool_catalogue(self.registry)}"
        if not native:
            system += "\n\n" + _FEW_SHOT
        user = goal if not context else f"{goal}\n\nWhat happened so far:\n{context}"
        messages: list[Message] = [Message("system", system), Message("user", user)]
        tools: tuple[dict[str, Any], ...] = ()
        if native:
            tools = (
                {
                    "type": "function",
                    "function": {
                        "name": SUBMIT,
                        "description": "Submit the plan of tool steps for the request.",
                        "parameters": PLAN_SCHEMA,
                    },
                },
            )
        usage = Usage()
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            done = self.llm.complete(Request(tuple(messages), tools=tools), self.provider)
            usage = usage + done.usage
            call = next((c for c in done.tool_calls if c.name == SUBMIT), None)
            raw: Any | None
            if native:
                raw = _arguments(call) if call is not None else None
            else:
                raw = first_json_object(done.text)
            if raw is None:
                return Planned(None, done.text.strip(), usage, attempt)
            try:
                plan = plan_from_json(goal, raw)
                problems = validate(plan, self.registry, max_steps=self.max_steps)
            except UsageError as exc:
                problems = [exc.message.rstrip(".")]
            if not problems:
                return Planned(plan, None, usage, attempt)
            feedback = "The plan is invalid: " + "; ".join(problems) + ". Submit a fixed plan."
            messages += _repair_messages(done, call, feedback)
        raise UsageError(
            f"the model's plan stayed invalid after {self.max_repairs} repairs: "
            + "; ".join(problems)
            + "."
        )


def _arguments(call: ToolCall) -> Any:
    try:
        return json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return {"steps": "not valid JSON"}


def _repair_messages(done: Completion, call: ToolCall | None, feedback: str) -> Sequence[Message]:
    if call is not None:
        return (
            Message("assistant", done.text, tool_calls=(call,)),
            Message("tool", feedback, tool_call_id=call.id),
        )
    if not done.text:
        raise ProviderResponseError("the model returned an empty answer to the planner.")
    return (Message("assistant", done.text), Message("user", feedback))
