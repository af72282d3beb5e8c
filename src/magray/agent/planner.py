"""Intent and planning: the model either answers directly or submits a plan of tool steps.

The strategy follows what the provider declares (``magray.llm.base.Capabilities``):
native function calling gets ``NativeTools`` (one function, ``submit_plan``); a chat model
without it gets ``JsonProtocol`` (the first JSON object of its answer is the plan); a base
model without a chat template gets ``WorkedExamples`` (a completion prompt of the nearest
worked examples and a JSON grammar); a chat model whose provider honours a JSON schema (the
embedded local chat models) gets ``GrammarChat`` (the chat template, the nearest examples
as turns and the plan's JSON schema as a grammar). Each lives in ``magray.agent.strategies``. A plan
that fails validation goes back to the model with the problems listed, at most
``max_repairs`` times; then ``PlanError`` (exit 6).
"""

from __future__ import annotations

from magray.agent.fewshot import ExampleSelector
from magray.agent.strategies.base import (
    LLM,
    PLAN_SCHEMA,
    SUBMIT,
    Planned,
    Strategy,
    first_json_object,
    tool_catalogue,
)
from magray.agent.strategies.examples import WorkedExamples
from magray.agent.strategies.grammar import GrammarChat
from magray.agent.strategies.json_protocol import JsonProtocol
from magray.agent.strategies.native import NativeTools
from magray.llm.base import capabilities_of
from magray.tools.registry import ToolRegistry

__all__ = [
    "LLM",
    "PLAN_SCHEMA",
    "SUBMIT",
    "Planned",
    "Planner",
    "Strategy",
    "first_json_object",
    "tool_catalogue",
]


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

    def strategy(self) -> Strategy:
        """The strategy the provider's declared capabilities call for."""
        caps = capabilities_of(self.llm.provider(self.provider))
        llm, registry = self.llm, self.registry
        provider, repairs, steps = self.provider, self.max_repairs, self.max_steps
        if not caps.chat_template:
            return WorkedExamples(
                llm,
                registry,
                provider=provider,
                max_repairs=repairs,
                max_steps=steps,
                selector=self.selector,
            )
        if caps.native_tools:
            return NativeTools(
                llm, registry, provider=provider, max_repairs=repairs, max_steps=steps
            )
        if caps.json_schema:
            return GrammarChat(
                llm,
                registry,
                provider=provider,
                max_repairs=repairs,
                max_steps=steps,
                selector=self.selector,
            )
        return JsonProtocol(llm, registry, provider=provider, max_repairs=repairs, max_steps=steps)

    def base_model(self) -> bool:
        """The provider runs a base model: plan by worked examples and a JSON grammar."""
        return not capabilities_of(self.llm.provider(self.provider)).chat_template

    def plan(self, goal: str, context: str = "", memories: str = "") -> Planned:
        """Ask for a plan for ``goal``; ``context`` tells it what went wrong before and
        ``memories`` what is remembered that may help.

        Raises:
            PlanError: the model kept proposing invalid plans after ``max_repairs`` repairs,
                or gave an empty answer every time.
            ProviderError: the LLM could not be reached.
        """
        return self.strategy().plan(goal, context, memories)
