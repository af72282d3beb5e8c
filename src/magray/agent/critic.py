"""The critic: does what the steps produced meet the goal? Asked of the LLM as JSON.

Step outputs and errors are tool output: ``step_report`` puts each in an untrusted-data
block (``magray.agent.untrusted``), and the critic's system prompt says not to follow
instructions inside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from magray.agent.executor import StepResult
from magray.agent.planner import LLM, first_json_object
from magray.agent.untrusted import RULE, untrusted
from magray.llm.base import Message, Request, Usage, capabilities_of

_SYSTEM = (
    "You check whether an agent's tool steps achieved the user's goal. Reply with one JSON "
    'object: {"done": true or false, "answer": "a short answer or summary for the user", '
    '"reason": "if not done, what went wrong and what to try instead"}. ' + RULE
)
OUTPUT_SHOWN = 2_000  # characters of each step's output shown to the critic


@dataclass(frozen=True, slots=True)
class Verdict:
    done: bool
    answer: str
    reason: str
    usage: Usage


def step_report(results: Sequence[StepResult]) -> str:
    """The steps' outcomes as text for the critic, re-planning and memory.

    Outputs and errors come from tools (files, web pages, commands): each is a delimited
    untrusted-data block, never text a model should obey.
    """
    lines = []
    for r in results:
        line = f"- {r.id} {r.tool}: {r.status}"
        if r.error:
            line += "\n" + untrusted(f"{r.id} {r.tool} error", r.error)
        if r.output:
            line += "\n" + untrusted(f"{r.id} {r.tool} output", r.output[:OUTPUT_SHOWN].strip())
        lines.append(line)
    return "\n".join(lines)


def rule_verdict(results: Sequence[StepResult]) -> Verdict:
    """The verdict without an LLM (base models cannot judge): done when every step is ok.

    The answer is the last step's output, or the failures when some step did not succeed.
    """
    bad = [r for r in results if r.status != "ok"]
    if bad:
        reason = "; ".join(f"{r.id} {r.tool} {r.status}: {r.error or ''}".strip() for r in bad)
        return Verdict(False, "", reason, Usage())
    last = results[-1].output.strip() if results else ""
    answer = last[:OUTPUT_SHOWN] or f"{len(results)} step(s) done."
    return Verdict(True, answer, "", Usage())


class Critic:
    def __init__(self, llm: LLM, *, provider: str | None = None) -> None:
        self.llm = llm
        self.provider = provider

    def judge(self, goal: str, results: Sequence[StepResult]) -> Verdict:
        """The LLM's verdict; an answer without JSON counts as done only if every step is ok.

        Base models are not asked: ``rule_verdict`` decides from the step statuses.
        """
        if not capabilities_of(self.llm.provider(self.provider)).chat_template:
            return rule_verdict(results)
        user = f"Goal: {goal}\n\nSteps:\n{step_report(results)}"
        messages = (Message("system", _SYSTEM), Message("user", user))
        done = self.llm.complete(Request(messages), self.provider)
        raw = first_json_object(done.text)
        all_ok = all(r.status == "ok" for r in results)
        if raw is None:
            return Verdict(all_ok, done.text.strip(), "", done.usage)
        return Verdict(
            bool(raw.get("done", all_ok)),
            str(raw.get("answer", "") or ""),
            str(raw.get("reason", "") or ""),
            done.usage,
        )
