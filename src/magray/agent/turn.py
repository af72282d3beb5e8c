"""One agent turn, the same for `ask`, `chat` and `run` (and an HTTP server).

recall → decide (answer or act) → plan → approve → execute under the policy → critic →
answer (streamed) → remember.

- **recall**: the memories relevant to the request, once (``Session.recall``).
- **decide and plan**: when the turn may act, the planner sees the request with those
  memories (what the agent wrote is delimited as untrusted data) and either plans or
  answers. Of the remembered agent runs it sees only those that worked (tag
  ``run:succeeded``): a dry run's or a failed run's plan would be planned again. A turn
  that may not act (``ask``) goes straight to the answer.
- **approve, execute, critic, re-plan**: ``Agent.run`` with the first plan; approval and
  the policy's asks go through the agent's callbacks (``magray.agent.approvals``).
- **answer**: after acting, the critic's answer; otherwise the grounded, cited answer
  streamed by ``Session.ask`` — or, with ``answer_from_planner`` (``run``), the planner's
  own direct answer without a second call.
- **remember**: an agent run that worked as one ``agent_run`` record with its
  provenance (``magray.agent.runner``); an answer as an exchange. In a conversation
  (``log_runs``) both are logged, so the next turn sees them as history.

Nothing here knows about terminals: text goes to ``on_text``, approvals to the asker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from magray.agent.conversations import Turn as LoggedTurn
from magray.agent.runner import Agent, RunReport
from magray.agent.session import (
    AGENT_RUN,
    RUN_SUCCEEDED,
    AskResult,
    Session,
    UsedMemory,
    check_length,
    new_conversation_id,
)
from magray.agent.untrusted import untrusted
from magray.errors import UsageError

MEMORY_CHARS = 600  # of each memory shown to the planner


@dataclass
class TurnResult:
    """What a turn did: an answer (``ask``) or a run (``run``), and the text shown."""

    text: str
    conversation_id: str
    memories: list[UsedMemory]
    ask: AskResult | None = None
    run: RunReport | None = None


def worked_example(memory: UsedMemory) -> bool:
    """Whether the planner may see ``memory``: anything but an agent run that is not marked
    as having worked (a dry run, a failed run, or a run stored before runs were marked)."""
    return memory.kind != AGENT_RUN or RUN_SUCCEEDED in memory.tags


def planning_memories(memories: Sequence[UsedMemory]) -> str:
    """Recalled memories for the planner: the user's as notes, the agent's as data; agent
    runs only when they worked (``worked_example``)."""
    lines = []
    for m in filter(worked_example, memories):
        text = " ".join(m.text.split())[:MEMORY_CHARS]
        if m.from_agent:
            lines.append(untrusted(f"memory {m.id}: an earlier agent run", text))
        else:
            lines.append(f"- {text}")
    return "\n".join(lines)


class AgentTurn:
    """Takes one turn of a conversation; ``agent`` is None where acting is not possible."""

    def __init__(
        self,
        session: Session,
        agent: Agent | None = None,
        *,
        answer_from_planner: bool = False,
        log_runs: bool = True,
    ) -> None:
        self.session = session
        self.agent = agent
        self.answer_from_planner = answer_from_planner
        self.log_runs = log_runs

    def take(
        self,
        request: str,
        *,
        act: bool = True,
        provider: str | None = None,
        model: str | None = None,
        conversation_id: str | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> TurnResult:
        """One turn for ``request``.

        Raises:
            UsageError: the request is empty.
            PlanError: the model gave no usable plan.
            ProviderError: the LLM could not be reached before anything ran.
        """
        if not request.strip():
            raise UsageError("the request is empty; say what you want, or pipe it in with '-'.")
        check_length(request, "the request")
        recalled = self.session.recall(request, provider)
        if act and self.agent is not None:
            memories = planning_memories(recalled)
            try:
                planned = self.agent.planner.plan(request, "", memories)
            except KeyboardInterrupt:
                report = RunReport(request, interrupted=True)
                report.result = "interrupted (Ctrl-C) before a plan was made; nothing ran."
                if on_text is not None:
                    on_text(report.result)
                conv = conversation_id or new_conversation_id()
                return TurnResult(report.result, conv, recalled, run=report)
            if planned.plan is not None or self.answer_from_planner:
                report = self.agent.run(request, memories, planned)
                if on_text is not None and report.result:
                    on_text(report.result)
                conv = conversation_id or new_conversation_id()
                if self.log_runs:
                    self._log(request, report, conv, provider, model)
                return TurnResult(report.result, conv, recalled, run=report)
        result = self.session.ask(
            request,
            provider=provider,
            model=model,
            conversation_id=conversation_id,
            on_text=on_text,
            recalled=recalled,
        )
        return TurnResult(result.answer, result.conversation_id, recalled, ask=result)

    def _log(
        self,
        request: str,
        report: RunReport,
        conversation_id: str,
        provider: str | None,
        model: str | None,
    ) -> None:
        """The acted turn in the conversation log, so the next turn sees it as history."""
        prov = self.session.llm.provider(provider)
        self.session.log.record(
            LoggedTurn(
                conversation_id=conversation_id,
                at=time.time(),
                prompt=request,
                answer=report.result,
                provider=prov.name,
                model=model or prov.model,
                prompt_tokens=report.usage.prompt_tokens,
                completion_tokens=report.usage.completion_tokens,
                latency_ms=0.0,
                memories=(),
                finish_reason="interrupted" if report.interrupted else "stop",
            )
        )
