"""Assembling the agent from a runtime: planner, executor and critic over one set of services.

:meth:`magray.runtime.Runtime.agent` and :meth:`~magray.runtime.Runtime.session` call these,
so `magray run`, `magray chat` and the HTTP server get the same agent from the same parts:
the runtime's LLM router, its tool registry, tool context, policy and audit log. What
differs between them (how a plan is approved, how a policy ask is answered, where step
results are shown) is passed in as one :class:`AgentOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from magray.errors import Surface

if TYPE_CHECKING:
    from magray.agent.executor import StepResult
    from magray.agent.runner import Agent, Approve, Rememberer
    from magray.agent.session import Recaller, Session
    from magray.memory.records import Filters
    from magray.runtime import Runtime
    from magray.tools.base import ToolContext
    from magray.tools.invoke import Confirm
    from magray.tools.policy import Policy
    from magray.tools.registry import ToolRegistry


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """How one agent runs; what differs between `magray run`, `magray chat` and the server.

    ``approve`` decides on a plan, ``confirm`` answers a policy ask, ``memory`` remembers the
    outcome, ``provider`` picks the LLM (None: the default), ``max_steps`` bounds a plan
    (None: no bound), ``max_replans`` and ``token_budget`` bound the run, ``on_results``
    shows step results as they come, and ``examples`` picks the planner's worked examples
    by similarity to the goal (with the runtime's embedder, loaded on first use; without it
    the planner takes them in order). ``surface`` words the errors of steps and of the run
    for where they are shown (the server's are in the HTTP API's words).
    """

    approve: Approve | None = None
    confirm: Confirm | None = None
    memory: Rememberer | None = None
    provider: str | None = None
    max_steps: int | None = 12
    max_replans: int = 1
    token_budget: int | None = None
    on_results: Callable[[list[StepResult]], None] | None = None
    examples: bool = True
    surface: Surface = "cli"


def build_agent(
    rt: Runtime,
    registry: ToolRegistry,
    context: ToolContext,
    policy: Policy,
    options: AgentOptions,
) -> Agent:
    """An agent that plans with ``rt.router`` and runs steps from ``registry`` under ``policy``."""
    from magray.agent.critic import Critic
    from magray.agent.executor import Executor
    from magray.agent.fewshot import ExampleSelector
    from magray.agent.planner import Planner
    from magray.agent.runner import Agent

    o = options
    selector = ExampleSelector(rt.embedder, follow_nearest=True) if o.examples else None
    return Agent(
        Planner(rt.router, registry, provider=o.provider, max_steps=o.max_steps, selector=selector),
        Executor(registry, context, policy, rt.audit, confirm=o.confirm, surface=o.surface),
        Critic(rt.router, provider=o.provider),
        approve=o.approve,
        memory=o.memory,
        max_replans=o.max_replans,
        token_budget=o.token_budget,
        on_results=o.on_results,
        surface=o.surface,
    )


def build_session(
    rt: Runtime,
    memory: Recaller | None,
    *,
    scope: Filters | None = None,
    k: int | None = None,
) -> Session:
    """A conversation over ``rt.router`` and the runtime's conversation log."""
    from magray.agent.session import Session

    return Session(rt.router, memory, rt.conversations, scope=scope, k=k)
