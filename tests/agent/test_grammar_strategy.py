"""Chat models that honour a JSON schema plan under a grammar (``GrammarChat``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from magray.agent.examples import EXAMPLES
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
    assert tools_allowed(llm.requests[1]) == {"file_write"}  # the path was wrong, not the tool
    bad = plan_json(("file_read", {"nope": 1}))
    invalid = Chat([bad, fixed])
    Planner(invalid, REGISTRY).plan("write x into a.txt")
    assert tools_allowed(invalid.requests[1]) == set(REGISTRY.names())


def test_the_catalogue_leads_with_the_direct_answer_and_keeps_whole_sentences() -> None:
    lines = GrammarChat(Chat([]), REGISTRY).catalogue().splitlines()
    assert lines[1].startswith("- answer: reply directly from general knowledge")
    glob = next(line for line in lines if line.startswith("- file_glob:"))
    assert glob == "- file_glob: Find files whose paths match a glob pattern (e.g. '**/*.py')"
    assert first_sentence("Fetch a page. Private addresses are refused.") == "Fetch a page"
    assert first_sentence("No full stop") == "No full stop"


def args_schema(request: Request, tool: str) -> dict[str, Any] | None:
    assert request.json_schema is not None
    for alternative in request.json_schema["properties"]["steps"]["items"]["anyOf"]:
        if alternative["properties"]["tool"]["const"] == tool:
            return dict(alternative["properties"]["args"])
    return None


def test_a_repair_after_a_made_up_path_offers_the_requests_own_paths() -> None:
    # the model copied a worked example's path; the repair names and allows only notes.md
    edit = ("file_edit", {"path": "notes/todo.md", "search": "teh", "replace": "the"})
    made_up = plan_json(edit, ("git_add", {"paths": ["notes/todo.md"]}))
    fixed = plan_json(("file_edit", {"path": "notes.md", "search": "teh", "replace": "the"}))
    llm = Chat([made_up, fixed])
    planned = Planner(llm, REGISTRY).plan("fix 'teh' to 'the' in notes.md and stage it")
    assert planned.plan is not None and planned.plan.steps[0].args["path"] == "notes.md"
    first = args_schema(llm.requests[0], "file_edit")
    assert first is not None and first["properties"]["path"] == {"type": "string"}
    repair = args_schema(llm.requests[1], "file_edit")
    assert repair is not None and repair["properties"]["path"] == {"enum": ["notes.md"]}
    git_add = args_schema(llm.requests[1], "git_add")
    assert git_add is not None and git_add["properties"]["paths"]["items"] == {"enum": ["notes.md"]}
    # the path was wrong, not the tools: the repair keeps the plan's own
    assert tools_allowed(llm.requests[1]) == {"file_edit", "git_add"}
    feedback = llm.requests[1].messages[-1].content
    assert feedback == (
        "Wrong path: the request does not name 'notes/todo.md'. Use the paths it names "
        "(notes.md) and plan again for the request: fix 'teh' to 'the' in notes.md and stage it"
    )
    assert llm.requests[1].temperature == 0.0  # the grammar rules the made-up path out


def test_a_repair_leaves_out_tools_that_need_a_path_when_the_request_names_none() -> None:
    made_up = plan_json(("file_write", {"path": "notes/release.md", "content": "Friday"}))
    remembered = plan_json(("memory_remember", {"text": "The release is on Friday"}))
    llm = Chat([made_up, remembered])
    planned = Planner(llm, REGISTRY).plan("save a note that the release is on Friday")
    assert planned.plan is not None and planned.plan.steps[0].tool == "memory_remember"
    allowed = tools_allowed(llm.requests[1])
    assert not allowed & {"file_write", "file_edit", "file_move", "file_delete", "git_add"}
    assert {"memory_remember", "shell_exec", "task_add", "git_commit"} <= allowed
    # the plan meant a change: a read or a listing would not do it ("save a note" once
    # became ``file_list {}``)
    assert not allowed & {"file_list", "file_read", "file_grep", "git_status", "answer"}
    shell = args_schema(llm.requests[1], "shell_exec")
    assert shell is not None and "cwd" not in shell["properties"]  # optional: dropped
    assert "names no file or folder" in llm.requests[1].messages[-1].content


def test_steps_after_a_made_up_path_are_dropped_when_the_ones_before_stand() -> None:
    # a small model extended "run the tests" with the git steps of a worked example
    extended = plan_json(
        ("shell_exec", {"argv": ["pytest", "tests"]}),
        ("git_add", {"paths": ["tests"]}),
        ("git_commit", {"message": "Run tests"}),
    )
    llm = Chat([extended])
    planned = Planner(llm, REGISTRY).plan("run the test suite with pytest")
    assert planned.plan is not None and len(llm.requests) == 1  # no repair
    assert [(s.tool, dict(s.args)) for s in planned.plan.steps] == [
        ("shell_exec", {"argv": ["pytest", "tests"]})
    ]


def test_a_made_up_path_in_the_first_step_is_still_repaired() -> None:
    made_up = plan_json(
        ("file_write", {"path": "notes/release.md", "content": "Friday"}),
        ("git_add", {"paths": ["notes/release.md"]}),
    )
    remembered = plan_json(("memory_remember", {"text": "The release is on Friday"}))
    llm = Chat([made_up, remembered])
    planned = Planner(llm, REGISTRY).plan("save a note that the release is on Friday")
    assert planned.plan is not None and planned.plan.steps[0].tool == "memory_remember"
    assert len(llm.requests) == 2


def test_a_re_plan_after_a_copy_keeps_the_made_up_path_ruled_out() -> None:
    # "make a note: …" → file_write notes/standup.md (made up) → task_update 12 (an
    # example's id) → planned again without that example: the file tools stay out
    llm = Chat(
        [
            plan_json(("file_write", {"path": "notes/standup.md", "content": "10am"})),
            plan_json(("task_update", {"id": "12", "state": "doing"})),
            plan_json(("memory_remember", {"text": "Standup moved to 10am"})),
        ]
    )
    shots = [e for e in EXAMPLES if e[0] == "set task 12 to in progress"]
    planner = Planner(llm, REGISTRY, selector=ExampleSelector(examples=shots, k=1))
    planned = planner.plan("make a note: standup moved to 10am")
    assert planned.plan is not None and planned.plan.steps[0].tool == "memory_remember"
    assert len(llm.requests) == 3
    third = tools_allowed(llm.requests[2])
    assert "memory_remember" in third and not third & {"file_write", "file_list", "file_read"}


def test_a_plan_that_copies_an_examples_argument_is_planned_again() -> None:
    # a worked example's text written as a memory instead of recalling what was asked for
    request = "what do you remember about the API keys?"
    shots = [e for e in EXAMPLES if "1Password" in e[0] or "editor settings" in e[0]]
    selector = ExampleSelector(examples=shots)
    copied_text = "The API key lives in 1Password"
    remember = plan_json(("memory_remember", {"text": copied_text}))
    recall = plan_json(("memory_recall", {"query": "API keys"}))
    llm = Chat([remember, recall])
    planned = Planner(llm, REGISTRY, selector=selector).plan(request)
    assert planned.plan is not None and planned.plan.steps[0].tool == "memory_recall"
    # planned again, greedily, without the example the value came from
    assert any(copied_text in m.content for m in llm.requests[0].messages)
    again = [m.content for m in llm.requests[1].messages]
    assert not any(copied_text in m for m in again)
    assert any("editor settings" in m for m in again) and again[-1].endswith(request)
    assert llm.requests[1].temperature == 0.0


def test_a_copy_that_stays_is_refused_not_run() -> None:
    request = "what do you remember about the API keys?"
    shots = [e for e in EXAMPLES if "1Password" in e[0]]
    remember = plan_json(("memory_remember", {"text": "The API key lives in 1Password"}))
    llm = Chat([remember] * 3)
    with pytest.raises(PlanError, match="copied from an example"):
        Planner(llm, REGISTRY, selector=ExampleSelector(examples=shots)).plan(request)


def test_an_argument_the_request_holds_is_not_a_copy() -> None:
    # "develop" is a worked example's branch too, but this request names it
    request = "check out the develop branch"
    shown = [a for _, a in ExampleSelector().select(request, REGISTRY)]
    assert {
        "steps": [
            {"id": "s1", "tool": "git_checkout", "args": {"ref": "develop"}, "depends_on": []}
        ]
    } in shown
    llm = Chat([plan_json(("git_checkout", {"ref": "develop"}))])
    planned = Planner(llm, REGISTRY).plan(request)
    assert planned.plan is not None and len(llm.requests) == 1


def test_a_read_of_an_examples_path_is_planned_again() -> None:
    request = "read notes.md"
    shots = [e for e in EXAMPLES if e[0] in ("open docs/intro.md", "what does the Makefile say?")]
    copied_read = plan_json(("file_read", {"path": "docs/intro.md"}))
    right = plan_json(("file_read", {"path": "notes.md"}))
    llm = Chat([copied_read, right])
    planned = Planner(llm, REGISTRY, selector=ExampleSelector(examples=shots)).plan(request)
    assert planned.plan is not None and planned.plan.steps[0].args["path"] == "notes.md"
    assert len(llm.requests) == 2


def test_a_read_of_a_revision_given_as_a_path_is_left_alone() -> None:
    request = "what changed in the working tree compared to the last commit?"
    shots = [e for e in EXAMPLES if e[0] == "show the contents of commit HEAD~1"]
    llm = Chat([plan_json(("git_diff", {"paths": ["HEAD~1", "HEAD"]}))])
    planned = Planner(llm, REGISTRY, selector=ExampleSelector(examples=shots)).plan(request)
    assert planned.plan is not None and len(llm.requests) == 1
