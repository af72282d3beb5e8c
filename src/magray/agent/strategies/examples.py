"""Planning for base models: a completion prompt of the nearest worked examples.

The nearest example decides the tool (or a direct answer); the model fills in the
arguments under a JSON grammar compiled from that tool's schema (``magray.agent.fewshot``).
"""

from __future__ import annotations

from magray.agent.fewshot import (
    MAX_STEPS,
    STOP,
    ExampleSelector,
    chain,
    completion_prompt,
    plan_schema,
    ungrounded,
)
from magray.agent.strategies.base import (
    LLM,
    Planned,
    StrategyBase,
    check,
    first_json_object,
    still_invalid,
)
from magray.errors import PROVIDER
from magray.llm.base import Message, Request, Usage
from magray.tools.registry import ToolRegistry

HINT = ("name files exactly as they are, or plan with a stronger provider (", PROVIDER, ")")


class WorkedExamples(StrategyBase):
    """Few-shot completion with the nearest examples; greedy first, then sampled."""

    name = "examples"

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

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        # A base model continues patterns; memories would read as part of the request.
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
                answer = str((raw.get("answer") if raw is not None else done.text) or "").strip()
                if answer:
                    return Planned(None, answer, usage, attempt)
                continue
            if "steps" not in raw:
                problems = ["the answer was cut off before the plan was complete"]
                continue
            plan, problems = check(goal, chain(raw), self.registry, self.max_steps)
            if plan is not None and not problems:
                problems = ungrounded(plan, goal, self.registry)
                if not problems:
                    return Planned(plan, None, usage, attempt)
        raise still_invalid(problems, self.max_repairs, HINT)
