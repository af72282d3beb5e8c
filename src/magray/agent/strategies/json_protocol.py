"""Planning by a few-shot JSON protocol, for chat models without native function calling."""

from __future__ import annotations

from magray.agent.strategies.base import (
    EMPTY,
    RULES,
    Planned,
    StrategyBase,
    as_plan_json,
    check,
    first_json_object,
    still_invalid,
    tool_catalogue,
    user_prompt,
)
from magray.llm.base import Message, Request, Usage

FEW_SHOT = (
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


class JsonProtocol(StrategyBase):
    """The first JSON object of the answer is the plan (a lone tool call is one step)."""

    name = "json"

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        system = f"{RULES}\n\n{tool_catalogue(self.registry)}\n\n{FEW_SHOT}"
        user = user_prompt(goal, context, memories)
        messages = [Message("system", system), Message("user", user)]
        usage = Usage()
        problems: list[str] = []
        for attempt in range(self.max_repairs + 1):
            done = self.llm.complete(Request(tuple(messages)), self.provider)
            usage = usage + done.usage
            text = done.text.strip()
            raw = first_json_object(text)
            if raw is None:
                if text:
                    return Planned(None, text, usage, attempt)
                problems = []
                messages.append(Message("user", EMPTY))
                continue
            plan, problems = check(goal, as_plan_json(raw), self.registry, self.max_steps)
            if plan is not None and not problems:
                return Planned(plan, None, usage, attempt)
            feedback = "The plan is invalid: " + "; ".join(problems) + ". Submit a fixed plan."
            messages += [Message("assistant", text), Message("user", feedback)]
        raise still_invalid(problems, self.max_repairs)
