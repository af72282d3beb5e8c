"""Planning with native function calling: the model is offered one function, ``submit_plan``."""

from __future__ import annotations

from typing import Any

from magray.agent.strategies.base import (
    EMPTY,
    PLAN_SCHEMA,
    RULES,
    SUBMIT,
    Planned,
    StrategyBase,
    arguments,
    check,
    direct_calls,
    still_invalid,
    tool_catalogue,
    user_prompt,
)
from magray.llm.base import Message, Request, Usage

SUBMIT_SPEC: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": SUBMIT,
        "description": "Submit the plan of tool steps for the request.",
        "parameters": PLAN_SCHEMA,
    },
}


class NativeTools(StrategyBase):
    """``submit_plan`` as the only function; a direct call of a tool is a one-step plan."""

    name = "native"

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        system = f"{RULES}\n\n{tool_catalogue(self.registry)}"
        user = user_prompt(goal, context, memories)
        messages = [Message("system", system), Message("user", user)]
        usage = Usage()
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            done = self.llm.complete(Request(tuple(messages), tools=(SUBMIT_SPEC,)), self.provider)
            usage = usage + done.usage
            submitted = [c for c in done.tool_calls if c.name == SUBMIT]
            calls = tuple(submitted[:1] or done.tool_calls)
            if not calls:
                if done.text.strip():
                    return Planned(None, done.text.strip(), usage, attempt)
                problems = []
                messages.append(Message("user", EMPTY))
                continue
            raw = arguments(calls[0]) if submitted else direct_calls(calls)
            plan, problems = check(goal, raw, self.registry, self.max_steps)
            if plan is not None and not problems:
                return Planned(plan, None, usage, attempt)
            feedback = "The plan is invalid: " + "; ".join(problems) + ". Submit a fixed plan."
            messages.append(Message("assistant", done.text, tool_calls=calls))
            messages += [Message("tool", feedback, tool_call_id=c.id) for c in calls]
        raise still_invalid(problems, self.max_repairs)
