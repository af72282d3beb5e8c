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
import re
from typing import Any

from magray.agent.fewshot import (
    ANSWER,
    MAX_ANSWER_CHARS,
    MAX_STEPS,
    ExampleSelector,
    FixedSelector,
    before_made_up,
    chain,
    compact,
    copied,
    example_tools,
    grounded_paths,
    made_up,
    plan_schema,
    request_paths,
    shows,
    ungrounded,
)
from magray.agent.plan import Plan
from magray.agent.strategies.base import (
    LLM,
    Planned,
    StrategyBase,
    check,
    first_json_object,
    still_invalid,
    user_prompt,
)
from magray.agent.untrusted import RULE
from magray.llm.base import Message, Request, Usage
from magray.tools.base import Risk
from magray.tools.registry import ToolRegistry

RULES = (
    "You are MAGRAY's planner. Answer every request with one JSON object: the steps that "
    'carry it out, in order: {"steps": [{"tool": "...", "args": {...}}]}. When the request '
    'needs no tool (general knowledge, arithmetic, translation) use the tool "answer" with '
    'args {"text": "..."} holding the reply. Take paths and names from the request; paths '
    "are relative to the workspace.\n\n" + RULE
)
#: the pseudo-tool of a direct answer: choosing it is one decision among the tool names
ANSWER_TOOL = {
    "type": "object",
    "properties": {
        "tool": {"const": ANSWER},
        "args": {
            "type": "object",
            "properties": {"text": {"type": "string", "maxLength": MAX_ANSWER_CHARS}},
            "required": ["text"],
        },
    },
    "required": ["tool", "args"],
}
MAX_PLAN_TOKENS = 256
ANSWER_USE = (
    "reply directly from general knowledge (facts, definitions, arithmetic, translation) "
    "when no file, command, web page, memory or task is involved"
)


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, without its full stop ("e.g." does not end one)."""
    match = re.search(r"(?<!e\.g)(?<!i\.e)\.(\s|$)", text)
    return (text[: match.start()] if match else text).strip()


CANDIDATES_ONLY = False


def as_steps(answer: dict[str, Any]) -> dict[str, Any]:
    """A worked example in the strategy's shape: a direct answer is the ``answer`` tool."""
    if "steps" in answer:
        return compact(answer)
    return {"steps": [{"tool": ANSWER, "args": {"text": str(answer.get("answer", ""))}}]}


class GrammarChat(StrategyBase):
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
        super().__init__(
            llm, registry, provider=provider, max_repairs=max_repairs, max_steps=max_steps
        )
        self.selector = selector or ExampleSelector()

    def _candidates(self, shots: list[tuple[str, dict[str, Any]]]) -> set[str] | None:
        """The tools of the nearest examples and a direct answer (every tool for fixed)."""
        if isinstance(self.selector, FixedSelector) or not CANDIDATES_ONLY:
            return None
        tools = {ANSWER}
        for _, answer in shots:
            tools |= example_tools(answer)
        return tools

    def schema(self, tools: set[str] | None, *, answer: bool = True) -> dict[str, Any]:
        """``{"steps": [...]}`` whose first step's tool (``answer`` too) is chosen by name.

        Without ``answer`` only tools: a plan being repaired stays a plan (a small model
        otherwise "answers" by repeating the feedback it was given).
        """
        steps = min(self.max_steps or MAX_STEPS, MAX_STEPS)
        plan = plan_schema(self.registry, steps, (tools or set(self.registry.names())) - {ANSWER})
        alternatives = plan.get("properties", {}).get("steps", {}).get("items", {}).get("anyOf", [])
        items = {"anyOf": [ANSWER_TOOL, *alternatives] if answer else alternatives}
        array = {"type": "array", "items": items, "minItems": 1, "maxItems": steps}
        return {"type": "object", "properties": {"steps": array}, "required": ["steps"]}

    def grounded(self, schema: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """``schema`` where a tool that changes files may only name ``paths``.

        Used for repairs: a small model told that its path is made up tends to repeat it,
        so the grammar offers the request's own paths instead; a tool that needs a path
        is left out when the request names none.
        """
        items = schema["properties"]["steps"]["items"]
        kept = []
        for alternative in items["anyOf"]:
            name = alternative["properties"]["tool"].get("const")
            tool = self.registry.get(name) if name in self.registry.names() else None
            if tool is None or tool.risk is Risk.READ or not tool.path_fields:
                kept.append(alternative)
                continue
            args = json.loads(json.dumps(alternative["properties"]["args"]))
            props, required = args.get("properties", {}), args.get("required", [])
            usable = True
            for field in tool.path_fields:
                if field not in props:
                    continue
                if not paths:
                    usable = usable and field not in required
                    props.pop(field)
                elif props[field].get("type") == "array":
                    props[field]["items"] = {"enum": paths}
                else:
                    props[field] = {"enum": paths}
            if usable:
                args["required"] = [r for r in required if r in props]
                kept.append({**alternative, "properties": {"tool": {"const": name}, "args": args}})
        return {
            **schema,
            "properties": {"steps": {**schema["properties"]["steps"], "items": {"anyOf": kept}}},
        }

    def made_up_paths(self, goal: str, plan: Plan) -> tuple[str, dict[str, Any]]:
        """The feedback and grammar of a repair for a plan that names a made-up path.

        The feedback names the request's own paths and repeats the request (a small model
        otherwise copies words of the feedback into its arguments); the grammar allows only
        those paths. When the request names some, the tools stay the plan's own (the path
        was wrong, not the tool: a model offered every tool again may turn a fix into a
        delete); when it names none, the tools that change something and need no path are
        offered (the plan meant a change: "save a note" repaired into ``file_list`` did
        nothing).
        """
        paths = request_paths(goal)
        paths += [p for p in grounded_paths(plan, goal, self.registry) if p not in paths]
        wrong = ", ".join(repr(p) for p in made_up(plan, goal, self.registry))
        feedback = f"Wrong path: the request does not name {wrong}. "
        if paths:
            feedback += f"Use the paths it names ({', '.join(paths)})"
            tools: set[str] | None = {step.tool for step in plan.steps}
        else:
            # the plan meant to change something: a read or a listing would not do it
            feedback += "It names no file or folder, so no file tool fits: choose another tool"
            tools = {t.name for t in self.registry if t.risk is not Risk.READ}
        feedback += f" and plan again for the request: {goal}"
        return feedback, self.grounded(self.schema(tools, answer=False), paths)

    def turns(self, catalogue: str, shots: list[tuple[str, Any]], prompt: str) -> list[Message]:
        """The system prompt, one user/assistant pair per worked example, the request."""
        messages = [Message("system", f"{RULES}\n\n{catalogue}")]
        for asked, answer in shots:
            messages.append(Message("user", asked))
            messages.append(Message("assistant", json.dumps(as_steps(answer))))
        messages.append(Message("user", prompt))
        return messages

    def catalogue(self) -> str:
        """One line per tool: its name and what it is for (the grammar holds the arguments).

        The direct answer comes first, described by when to use it: a small model otherwise
        reaches for a file or a command for questions of general knowledge.
        """
        lines = ["Tools:", f"- {ANSWER}: {ANSWER_USE}"]
        for tool in self.registry:
            lines.append(f"- {tool.name}: {first_sentence(tool.description)}")
        return "\n".join(lines)

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        shots = [(q, dict(a)) for q, a in self.selector.select(goal, self.registry)]
        schema = self.schema(self._candidates(shots))
        catalogue = self.catalogue()
        prompt = user_prompt(goal, context, memories)
        shown = list(shots)  # every example the model saw, for the copy check
        messages = self.turns(catalogue, shots, prompt)
        usage = Usage()
        problems: list[str] = []
        greedy = not context
        #: the grammar of a made-up-path repair: later repairs keep it (a re-plan without a
        #: copied example once went back to the made-up path it had ruled out)
        grounded: dict[str, Any] | None = None
        for attempt in range(self.max_repairs + 1):
            request = Request(
                tuple(messages),
                max_tokens=MAX_PLAN_TOKENS,
                temperature=0.0 if greedy else 0.7,
                json_schema=schema,
            )
            done = self.llm.complete(request, self.provider)
            usage = usage + done.usage
            raw = first_json_object(done.text)
            steps = raw.get("steps") if raw is not None else None
            if isinstance(steps, list) and steps and isinstance(steps[0], dict):
                if steps[0].get("tool") == ANSWER:
                    text = str((steps[0].get("args") or {}).get("text") or "").strip()
                    if text:
                        return Planned(None, text, usage, attempt)
                    problems = ["the answer was empty"]
                    continue
                raw = {
                    "steps": [s for s in steps if isinstance(s, dict) and s.get("tool") != ANSWER]
                }
            if raw is None:
                problems = ["the answer was cut off before the plan was complete"]
                continue
            plan, problems = check(goal, chain(raw), self.registry, self.max_steps)
            if plan is not None and not problems:
                plan = before_made_up(plan, goal, self.registry) or plan
                problems = ungrounded(plan, goal, self.registry)
                if problems:
                    # the grammar now rules the made-up path out: no need to sample
                    feedback, schema = self.made_up_paths(goal, plan)
                    grounded = schema
                    greedy = True
                else:
                    values = copied(plan, goal, shown, self.registry)
                    if not values:
                        return Planned(plan, None, usage, attempt)
                    # feedback does not stop a small model copying what it still sees: plan
                    # again without the examples that hold the copied values
                    problems = [f"{v!r} is copied from an example" for v in values]
                    shots = [s for s in shots if not shows(s, values)]
                    schema = grounded or self.schema(self._candidates(shots), answer=False)
                    messages = self.turns(catalogue, shots, prompt)
                    greedy = True
                    continue
            else:
                greedy = False
                feedback = "The plan is invalid: " + "; ".join(problems) + ". Answer again."
                schema = grounded or self.schema(self._candidates(shots), answer=False)
            messages += [Message("assistant", done.text), Message("user", feedback)]
        raise still_invalid(problems, self.max_repairs)
