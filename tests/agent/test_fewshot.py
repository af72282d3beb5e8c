"""Few-shot planning for base models: example choice, the plan grammar, linear plans, retries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from magray.agent.critic import Critic
from magray.agent.examples import EXAMPLES
from magray.agent.executor import StepResult
from magray.agent.fewshot import (
    ExampleSelector,
    FixedSelector,
    chain,
    compact,
    completion_prompt,
    grammar_schema,
    plan_schema,
)
from magray.agent.plan import plan_from_json, validate
from magray.agent.planner import Planner
from magray.errors import ModelNotInstalledError, PlanError
from magray.llm.base import Capabilities, Completion, Request, Usage
from magray.tools.registry import default_registry

REGISTRY = default_registry()


@dataclass
class Base:
    """A scripted base model (no chat template, like the embedded default model)."""

    answers: list[str]
    requests: list[Request] = field(default_factory=list)
    supports_tools: bool = False
    capabilities: Capabilities = field(
        default_factory=lambda: Capabilities(chat_template=False, json_schema=True)
    )

    def provider(self, name: str | None = None) -> Any:
        return self

    def complete(self, request: Request, provider: str | None = None) -> Completion:
        self.requests.append(request)
        return Completion(self.answers.pop(0), "base", "local", Usage(30, 7))


def test_every_worked_example_is_a_valid_plan() -> None:
    assert len(EXAMPLES) >= 50
    for request, answer in EXAMPLES:
        if "answer" in answer:
            continue
        assert validate(plan_from_json(request, answer), REGISTRY) == [], request
    used = {s["tool"] for _, a in EXAMPLES for s in a.get("steps", [])}
    assert used == set(REGISTRY.names())  # every built-in tool is shown at least twice
    assert all(
        sum(s["tool"] == t for _, a in EXAMPLES for s in a.get("steps", [])) >= 2 for t in used
    )


def test_bench_requests_are_not_examples() -> None:
    from magray.agent.bench import CASES

    assert not {q for q, _ in CASES} & {q for q, _ in EXAMPLES}


def test_lexical_selector_puts_the_closest_example_last() -> None:
    selector = ExampleSelector(k=3)
    shots = selector.select("please show the commit history of this repo", REGISTRY)
    assert len(shots) == 3 and shots[-1][0] == "show the commit history"
    assert selector.candidates(shots) >= {"git_log"}


def test_examples_needing_missing_tools_are_skipped() -> None:
    from magray.tools.registry import ToolRegistry

    only_git = ToolRegistry()
    for tool in REGISTRY:
        if tool.name.startswith("git_"):
            only_git.register(tool)
    shots = ExampleSelector(k=50).select("replace foo with bar and commit", only_git)
    tools = {s["tool"] for _, a in shots for s in a.get("steps", [])}
    assert tools and tools <= set(only_git.names())


def test_embedding_failure_falls_back_to_words(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> Any:
        raise ModelNotInstalledError("no model; run `magray models install default`")

    selector = ExampleSelector(broken, k=2)
    assert selector.method == "embedding"
    shots = selector.select("list the tasks please", REGISTRY)
    assert shots[-1][0] == "list the tasks"
    assert selector.method == "lexical" and "word overlap" in caplog.text


def test_follow_nearest_lets_the_nearest_example_decide() -> None:
    selector = ExampleSelector(k=4, follow_nearest=True)
    shots = selector.select("show the commit history please", REGISTRY)
    assert selector.candidates(shots) == {"git_log"}
    shots = selector.select("who wrote Hamlet really?", REGISTRY)
    assert selector.candidates(shots) == {"answer"}
    pool = ExampleSelector(k=4).candidates(shots)
    assert pool is not None and "answer" in pool and len(pool) > 1


def test_fixed_selector_offers_every_tool() -> None:
    selector = FixedSelector()
    a = selector.select("anything", REGISTRY)
    assert a == selector.select("something else entirely", REGISTRY)
    assert selector.candidates(a) is None


def test_prompt_compact_form_and_chain() -> None:
    shots = [EXAMPLES[0]]
    prompt = completion_prompt("read   the\nREADME", shots)
    assert prompt.endswith("Request: read the README\nJSON:")
    assert 'JSON: {"steps": [{"tool": "file_read", "args": {"path": "docs/intro.md"}}]}' in prompt
    full = {
        "steps": [
            {"tool": "git_add", "args": {"paths": ["a"]}},
            {"tool": "git_commit", "args": {"message": "m"}},
            {"tool": "git_commit", "args": {"message": "m"}},
        ]
    }
    assert chain(full)["steps"] == [
        {"id": "s1", "tool": "git_add", "args": {"paths": ["a"]}, "depends_on": []},
        {"id": "s2", "tool": "git_commit", "args": {"message": "m"}, "depends_on": ["s1"]},
    ]
    assert compact(chain(full)) == {"steps": full["steps"][:2]}


def test_plan_schema_inlines_refs_and_limits_tools() -> None:
    schema = plan_schema(REGISTRY, 2, {"task_update", "git_log"})  # no direct answer
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and '"title"' not in text
    steps = schema["properties"]["steps"]
    assert steps["maxItems"] == 2
    consts = [alt["properties"]["tool"]["const"] for alt in steps["items"]["anyOf"]]
    assert consts == ["git_log", "task_update"]
    update = steps["items"]["anyOf"][1]["properties"]["args"]
    assert "done" in json.dumps(update["properties"]["state"])  # the enum, inlined
    with_answer = plan_schema(REGISTRY, 3, {"answer", "git_log"})
    assert [set(c["properties"]) for c in with_answer["anyOf"]] == [{"answer"}, {"steps"}]
    assert plan_schema(REGISTRY, 3, {"answer"})["required"] == ["answer"]
    assert len(plan_schema(REGISTRY)["anyOf"][1]["properties"]["steps"]["items"]["anyOf"]) == 25
    assert grammar_schema({"type": "string", "pattern": "x+", "format": "uri"}) == {
        "type": "string"
    }


def test_base_model_plans_from_examples_with_a_grammar() -> None:
    llm = Base(['{"steps": [{"tool": "git_log", "args": {"max_count": 2}}]}'])
    planned = Planner(llm, REGISTRY).plan("show the last two commits")
    assert planned.plan is not None
    assert [s.to_dict() for s in planned.plan.steps] == [
        {"id": "s1", "tool": "git_log", "args": {"max_count": 2}, "depends_on": []}
    ]
    (request,) = llm.requests
    assert request.completion and request.json_schema is not None and request.temperature == 0
    assert request.messages[0].content.endswith("Request: show the last two commits\nJSON:")
    assert "Request: show the commit history" in request.messages[0].content


def test_base_model_direct_answer_cut_off_and_invalid_retries() -> None:
    assert Planner(Base(['{"answer": "Paris."}']), REGISTRY).plan("capital?").answer == "Paris."
    cut = '{"steps": [{"tool": "git_log", "args": {"max_count": 2}}'  # no closing brackets
    ok = '{"steps": [{"tool": "git_status", "args": {}}]}'
    llm = Base([cut, ok])
    planned = Planner(llm, REGISTRY).plan("status?")
    assert planned.plan is not None and planned.repairs == 1
    assert llm.requests[1].temperature and llm.requests[1].temperature > 0
    bad = '{"steps": [{"tool": "file_read", "args": {}}]}'
    with pytest.raises(PlanError, match="invalid after 2 repairs: step s1: file_read"):
        Planner(Base([bad] * 3), REGISTRY).plan("read it")


def test_base_model_empty_answer_is_asked_again_then_fails() -> None:
    llm = Base(["", '{"answer": "Paris."}'])
    assert Planner(llm, REGISTRY).plan("capital?").answer == "Paris."
    assert len(llm.requests) == 2
    with pytest.raises(PlanError, match="empty answer 3 times"):
        Planner(Base(["", '{"answer": " "}', ""]), REGISTRY).plan("capital?")


def test_base_model_paths_must_come_from_the_request() -> None:
    made_up = (
        '{"steps": [{"tool": "file_write", "args": {"path": "notes/todo.md", "content": "x"}}]}'
    )
    named = json.dumps(
        {
            "steps": [
                {"tool": "file_edit", "args": {"path": "Notes.txt", "search": "a", "replace": "b"}}
            ]
        }
    )
    llm = Base([made_up, named])
    planned = Planner(llm, REGISTRY).plan("in notes.txt change a to b")
    assert planned.plan is not None and planned.plan.steps[0].args["path"] == "Notes.txt"
    assert planned.repairs == 1
    with pytest.raises(PlanError, match=r"the path 'notes/todo\.md' is not in the request"):
        Planner(Base([made_up] * 3), REGISTRY).plan("in notes.txt change a to b")
    read = '{"steps": [{"tool": "file_read", "args": {"path": "docs/README.md"}}]}'
    assert Planner(Base([read]), REGISTRY).plan("show README.md").plan is not None
    globbed = '{"steps": [{"tool": "file_glob", "args": {"pattern": "**/*.md", "path": "."}}]}'
    assert Planner(Base([globbed]), REGISTRY).plan("find markdown files").plan is not None


def test_critic_does_not_ask_a_base_model() -> None:
    llm = Base([])
    ok = [StepResult("s1", "git_log", "ok", output="abc123 First\n")]
    verdict = Critic(llm).judge("show history", ok)
    assert verdict.done and verdict.answer == "abc123 First" and not llm.requests
    bad = [*ok, StepResult("s2", "git_show", "failed", error="unknown revision")]
    verdict = Critic(llm).judge("show history", bad)
    assert not verdict.done and "s2 git_show failed: unknown revision" in verdict.reason


def test_base_model_replan_samples_instead_of_repeating() -> None:
    llm = Base(['{"steps": [{"tool": "git_status", "args": {}}]}'])
    Planner(llm, REGISTRY).plan("status?", context="step s1 failed")
    assert llm.requests[0].temperature == 0.7
    assert "(step s1 failed)" in llm.requests[0].messages[0].content


def test_request_paths_are_the_files_and_folders_a_request_names() -> None:
    from magray.agent.fewshot import request_paths

    assert request_paths("rename notes.txt to notes.md, then open docs/a.md.") == [
        "notes.txt",
        "notes.md",
        "docs/a.md",
    ]
    assert request_paths("list the files in the src folder") == ["src"]
    assert request_paths("delete the file README") == ["README"]
    assert request_paths("fetch https://example.com/a.html with python 3.11") == []
    assert request_paths("save a note that the release is on Friday") == []


def test_bench_agent_runs_a_subset_of_its_requests() -> None:
    from magray.agent.bench import select_cases
    from magray.errors import UsageError

    cases = select_cases(["PYTEST", "leap year"])
    assert [c[0] for c in cases] == [
        "run the test suite with pytest",
        "how many days are in a leap year?",
    ]
    assert len(select_cases()) == 36
    with pytest.raises(UsageError, match="no request contains 'nothing like this'"):
        select_cases(["nothing like this"])
