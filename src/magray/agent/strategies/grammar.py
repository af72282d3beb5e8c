"""Planning for chat models that honour a JSON schema (the embedded local chat models).

The answer is constrained, token by token, to the compact plan shape of
``magray.agent.fewshot.plan_schema``: ``{"answer": …}`` or ``{"steps": [{"tool", "args"}]}``
with one alternative per candidate tool and that tool's own argument schema, so every
answer parses and names a real tool with well-formed arguments. The system prompt (rules
and the whole tool catalogue, ~2,000 tokens) never changes, so llama.cpp's prompt cache
reads it once per process; the nearest worked examples follow as earlier chat turns and
their tools (plus a direct answer) are the candidates the grammar allows.
"""

from __future__ import annotations

import json
from typing import Any

from magray.agent.fewshot import (
    ANSWER,
    MAX_STEPS,
    ExampleSelector,
    FixedSelector,
    chain,
    compact,
    example_tools,
    plan_schema,
    ungrounded,
)
from magray.agent.strategies.base import (
    LLM,
    Planned,
    check,
    first_json_object,
    still_invalid,
    tool_catalogue,
    user_prompt,
)
from magray.agent.untrusted import RULE
from magray.llm.base import Message, Request, Usage
from magray.tools.registry import ToolRegistry

RULES = (
    "You are MAGRAY's planner. Answer every request with one JSON object. When the request "
    'needs no tool (general knowledge, arithmetic, translation), answer it: {"answer": "..."}. '
    'Otherwise give the fewest tool steps that carry it out, in order: {"steps": [{"tool": '
    '"...", "args": {...}}]}. Take paths and names from the request; paths are relative to '
    "the workspace.\n\n" + RULE
)
MAX_PLAN_TOKENS = 256
SHOTS_AS_TURNS = False


class GrammarChat:
    """Chat template, nearest worked examples as turns, and a JSON-schema grammar."""

    name = "grammar"

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
        self.provider = provider
        self.max_repairs = max_repairs
        self.max_steps = max_steps
        self.selector = selector or ExampleSelector()

    def _candidates(self, shots: list[tuple[str, dict[str, Any]]]) -> set[str] | None:
        """The tools of the nearest examples and a direct answer (every tool for fixed)."""
        if isinstance(self.selector, FixedSelector):
            return None
        tools = {ANSWER}
        for _, answer in shots:
            tools |= example_tools(answer)
        return tools

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        shots = [(q, dict(a)) for q, a in self.selector.select(goal, self.registry)]
        steps = min(self.max_steps or MAX_STEPS, MAX_STEPS)
        schema = plan_schema(self.registry, steps, self._candidates(shots))
        messages = [Message("system", f"{RULES}\n\n{tool_catalogue(self.registry)}")]
        if SHOTS_AS_TURNS:
            for request, answer in shots:
                messages.append(Message("user", request))
                messages.append(Message("assistant", json.dumps(compact(answer))))
        messages.append(Message("user", user_prompt(goal, context, memories)))
        usage = Usage()
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            request = Request(
                tuple(messages),
                max_tokens=MAX_PLAN_TOKENS,
                temperature=0.0 if attempt == 0 and not context else 0.7,
                json_schema=schema,
            )
            done = self.llm.complete(request, self.provider)
            usage = usage + done.usage
            raw = first_json_object(done.text)
            if raw is not None and "steps" not in raw:
                answer = str(raw.get("answer") or "").strip()
                if answer:
                    return Planned(None, answer, usage, attempt)
                problems = ["the answer was empty"]
                continue
            if raw is None:
                problems = ["the answer was cut off before the plan was complete"]
                continue
            plan, problems = check(goal, chain(raw), self.registry, self.max_steps)
            if plan is not None and not problems:
                problems = ungrounded(plan, goal, self.registry)
                if not problems:
                    return Planned(plan, None, usage, attempt)
            feedback = "The plan is invalid: " + "; ".join(problems) + ". Answer again."
            messages += [Message("assistant", done.text), Message("user", feedback)]
        raise still_invalid(problems, self.max_repairs)
