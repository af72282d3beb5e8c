"""The JSON / few-shot protocol for providers without native tool calling, and retries."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from magray.agent.executor import Executor
from magray.agent.plan import Plan, Step
from magray.agent.planner import Planner
from magray.errors import PlanError
from magray.llm.base import Capabilities, Completion, Request, Usage
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext
from magray.tools.policy import Mode, Policy
from magray.tools.registry import default_registry


@dataclass
class BaseModel:
    """A scripted LLM without native tool calling (like the local base model)."""

    answers: list[str]
    requests: list[Request] = field(default_factory=list)
    supports_tools: bool = False
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(native_tools=False))

    def provider(self, name: str | None = None) -> Any:
        return self

    def complete(self, request: Request, provider: str | None = None) -> Completion:
        self.requests.append(request)
        return Completion(self.answers.pop(0), "base", "local", Usage(10, 5))


def test_json_protocol_plan_and_repair() -> None:
    llm = BaseModel(
        [
            'Plan: {"steps": [{"id": "s1", "tool": "git_stat", "args": {}}]}',
            'Fixed: {"steps": [{"id": "s1", "tool": "git_status", "args": {}}]}',
        ]
    )
    planned = Planner(llm, default_registry()).plan("show the status")
    assert planned.plan is not None and planned.plan.steps[0].tool == "git_status"
    assert planned.repairs == 1 and planned.usage == Usage(20, 10)
    first = llm.requests[0]
    assert first.tools == () and "Request: show the git status" in first.messages[0].content
    assert "unknown tool 'git_stat'" in llm.requests[1].messages[-1].content


def test_json_protocol_direct_answer_and_bounded_repairs() -> None:
    assert Planner(BaseModel(["4"]), default_registry()).plan("2+2?").answer == "4"
    bad = '{"steps": [{"id": "s1", "tool": "nope", "args": {}}]}'
    with pytest.raises(PlanError, match="invalid after 2 repairs"):
        Planner(BaseModel([bad] * 3), default_registry()).plan("x")


def test_timeouts_are_retried_once(tmp_path: Path) -> None:
    executor = Executor(
        default_registry(),
        ToolContext(roots=(tmp_path,)),
        Policy(mode=Mode(yes=True)),
        AuditLog(tmp_path / "audit.db"),
        step_timeout=0.2,
    )
    plan = Plan("g", (Step("s", "shell_exec", {"argv": ["sleep", "5"]}),))
    (result,) = executor.run(plan)
    assert result.status == "failed" and result.attempts == 2
    assert result.error is not None and "timed out" in result.error
