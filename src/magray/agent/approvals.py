"""Who approves what during a session: plans, the policy's asks, and the chat modes.

A plan whose steps only read runs without asking. A plan with side effects is shown and
asked about once through the ``Asker`` (a terminal prompt, an HTTP client, a test):
``yes`` runs it and approves the policy's asks for its steps, ``no`` runs nothing,
``always`` runs it and approves its tools for the rest of the session. Modes (``/mode`` in
chat):

- ``ask-first`` (default): as above.
- ``auto-edit``: file edits (``file_write``, ``file_edit``) in the workspace are approved
  without asking; commands, deletes, git changes and the network still ask.
- ``read-only``: the policy denies every write, command and network call (no asking).

Approval never overrides a deny: a deny rule, a path outside the roots, a built-in deny or
``read-only`` still refuses the step.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from magray.agent.plan import Plan
from magray.tools.base import Risk
from magray.tools.registry import ToolRegistry

EDIT_TOOLS = frozenset({"file_write", "file_edit"})


class Mode(StrEnum):
    ASK_FIRST = "ask-first"
    AUTO_EDIT = "auto-edit"
    READ_ONLY = "read-only"


class Choice(StrEnum):
    YES = "y"
    NO = "n"
    ALWAYS = "always"


class Asker(Protocol):
    """How a session asks its user (kept free of any UI library)."""

    def approve(self, plan: Plan, tools: frozenset[str]) -> Choice:
        """May ``plan`` run? ``tools`` are its tools with side effects."""
        ...

    def confirm(self, tool: str, preview: str) -> bool:
        """The policy asks about one call of ``tool`` (``preview``: what it would do)."""
        ...


def side_effect_tools(plan: Plan, registry: ToolRegistry) -> frozenset[str]:
    """The tools of ``plan`` whose call (with its arguments) does more than read."""
    found = set()
    for step in plan.steps:
        tool = registry.get(step.tool)
        if tool.risk_for(tool.parse(step.args)) is not Risk.READ:
            found.add(step.tool)
    return frozenset(found)


class Approvals:
    """Plan approval and the policy's asks for one session (a chat, a run, a request)."""

    def __init__(
        self,
        asker: Asker | None,
        registry: ToolRegistry,
        *,
        mode: Mode = Mode.ASK_FIRST,
        yes: bool = False,
    ) -> None:
        self.asker = asker
        self.registry = registry
        self.mode = mode
        self.yes = yes
        self.always: set[str] = set()
        self._plan_approved = False

    def _automatic(self, tool: str) -> bool:
        return tool in self.always or (self.mode is Mode.AUTO_EDIT and tool in EDIT_TOOLS)

    def approve(self, plan: Plan) -> bool:
        """Whether ``plan`` may run (asking when it has side effects not yet approved)."""
        self._plan_approved = False
        tools = side_effect_tools(plan, self.registry)
        if self.yes or not tools or self.mode is Mode.READ_ONLY:
            return True  # read-only: the policy refuses the side effects, nobody is asked
        if all(self._automatic(t) for t in tools):
            return True  # nobody said yes to this plan: its other asks are still asked
        if self.asker is None:
            return True  # nobody to ask: the policy turns each ask into a denial
        choice = self.asker.approve(plan, tools)
        if choice is Choice.ALWAYS:
            self.always |= tools
        self._plan_approved = choice is not Choice.NO
        return self._plan_approved

    def confirm(self, tool: str, preview: str) -> bool:
        """The policy's ask for one step: approved with its plan, else asked."""
        if self._plan_approved or self._automatic(tool):
            return True
        if self.mode is Mode.READ_ONLY:
            return False
        return self.asker is not None and self.asker.confirm(tool, preview)
