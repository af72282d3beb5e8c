"""Chat models that honour a JSON schema plan under a grammar (``GrammarChat``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from magray.agent.fewshot import ExampleSelector
from magray.agent.planner import Planner
from magray.agent.strategies.grammar import GrammarChat, as_steps, first_sentence
from magray.agent.strategies.json_protocol import JsonProtocol
from magray.errors import PlanError
from magray.llm.base import Capabilities, Completion, Request, Usage
from magray.tools.registry import default_registry

REGISTRY = default_registry()


@dataclass
class Chat:
    """A scripted chat model whose provider compiles JSON schemas to a grammar."""

    answers: list[str]
    requests: list[Request] = field(default_factory=list)
    supports_tools: bool = False
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat_template=True, json_schema=True)
    )

    def provider(self, name: str | None = None) -> Any:
        return self

    def complete(self, request: Request, provider: str | None = None) -> Completion:
        self.requests.append(request)
        return Completion(self.answers.pop(0), "chat", "local", Usage(40, 9))


def plan_json(*steps: tuple[str, dict[str, Any]]) -> str:
    return json.dumps({"steps": [{"tool": t, "args": a} for t, a in steps]})


def test_capabilities_choose_the_strategy() -> None:
    assert isinstance(Planner(Chat([]), REGISTRY).strategy(), GrammarChat)
    plain = Chat([], capabilities=Capabilities(chat_template=True, json_schema=False))
    assert isinstance(Planner(plain, REGISTRY).strategy(), JsonProtocol)


def test_plans_under_the_schema_with_a_stable_system_prompt() -> None:
    llm = Chat([plan_json(("git_log", {"max_count": 3}))])
    planned = Planner(llm, REGISTRY, selector=ExampleSelector(k=3)).plan("show the last 3 commits")
    assert planned.plan is not None and planned.plan.steps[0].tool == "git_log"
    request = llm.requests[0]
    schema = request.json_schema
    assert schema is not None and schema["required"] == ["steps"]
    names = {
        a["properties"]["tool"]["const"] for a in schema["properties"]["steps"]["items"]["anyOf"]
    }
    assert names == {*REGISTRY.names(), "answer"}
    assert request.messages[0].role == "system" and "git_log" in request.messages[0].content
    # the nearest examples are earlier turns; the request is the last message
    assert [m.role for m in request.messages[1:3]] == ["user", "assistant"]
    assert request.messages[-1].content == "show the last 3 commits"
    other = Chat([plan_json(("file_list", {"path": "."}))])
    Planner(other, REGISTRY, selector=ExampleSelector(k=3)).plan("list the files here")
    assert other.requests[0].messages[0] == request.messages[0]  # cacheable prefix


def test_direct_answer_and_repairs() -> None:
    answer = json.dumps({"steps": [{"tool": "answer", "args": {"text": "Paris."}}]})
    planned = Planner(Chat([answer]), REGISTRY).plan("what is the capital of France?")
    assert planned.plan is None and planned.answer == "Paris."
    bad = plan_json(("file_read", {"nope": 1}))
    llm = Chat([bad, bad, bad])
    with pytest.raises(PlanError, match="stayed invalid after 2 repairs"):
        Planner(llm, REGISTRY).plan("read a.txt")
    assert len(llm.requests) == 3
    assert "The plan is invalid" in llm.requests[1].messages[-1].content
    assert llm.requests[1].temperature == 0.7  # not the same greedy answer again


def test_examples_are_shown_in_the_strategy_shape() -> None:
    assert as_steps({"answer": "4"}) == {"steps": [{"tool": "answer", "args": {"text": "4"}}]}
    shaped = as_steps({"steps": [{"id": "s1", "tool": "git_status", "args": {}, "depends_on": []}]})
    assert shaped == {"steps": [{"tool": "git_status", "args": {}}]}


def tools_allowed(request: Request) -> set[str]:
    assert request.json_schema is not None
    items = request.json_schema["properties"]["steps"]["items"]["anyOf"]
    return {a["properties"]["tool"]["const"] for a in items}


def test_a_plan_under_repair_may_not_turn_into_an_answer() -> None:
    # a small model asked again "answers" with the feedback it was given: only tools now
    made_up = plan_json(("file_write", {"path": "notes/todo.md", "content": "x"}))
    fixed = plan_json(("file_write", {"path": "a.txt", "content": "x"}))
    llm = Chat([made_up, fixed])
    planned = Planner(llm, REGISTRY).plan("write x into a.txt")
    assert planned.plan is not None and planned.plan.steps[0].args["path"] == "a.txt"
    assert "answer" in tools_allowed(llm.requests[0])
    assert tools_allowed(llm.requests[1]) == set(REGISTRY.names())


def test_the_catalogue_leads_with_the_direct_answer_and_keeps_whole_sentences() -> None:
    lines = GrammarChat(Chat([]), REGISTRY).catalogue().splitlines()
    assert lines[1].startswith("- answer: reply directly from general knowledge")
    glob = next(line for line in lines if line.startswith("- file_glob:"))
    assert glob == "- file_glob: Find files whose paths match a glob pattern (e.g. '**/*.py')"
    assert first_sentence("Fetch a page. Private addresses are refused.") == "Fetch a page"
    assert first_sentence("No full stop") == "No full stop"
