"""End-to-end agent runs against a scripted OpenAI chat-completions server with tool_calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from magray.agent.runner import AGENT_RUN
from magray.memory.records import Layer

from .conftest import Remembered, Scripted, git, oa_plan, oa_stream, oa_verdict, openai_config, step


def test_edit_and_commit(server: Scripted, magray_home: Path, repo: Path, make_agent: Any) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(
            step("edit", "file_edit", {"path": "notes.txt", "search": "two", "replace": "2"}),
            step("add", "git_add", {"paths": ["notes.txt"]}, "edit"),
            step("commit", "git_commit", {"message": "Write two as a digit"}, "add"),
        ),
        oa_verdict(True, "Edited notes.txt and committed it."),
    )
    memory = Remembered()
    report = make_agent(repo, memory=memory).run("change two to 2 in notes.txt and commit")
    assert [s.status for s in report.steps] == ["ok", "ok", "ok"]
    assert report.done and report.replans == 0
    assert report.result == "Edited notes.txt and committed it."
    assert (repo / "notes.txt").read_text() == "one\n2\nthree\n"
    assert git(repo, "log", "--format=%s", "-1").strip() == "Write two as a digit"
    assert git(repo, "status", "--porcelain") == ""
    # native tool calling: one function, the tool list in the system prompt
    sent = server.requests[0]
    assert [t["function"]["name"] for t in sent["tools"]] == ["submit_plan"]
    assert "file_edit" in sent["messages"][0]["content"]
    assert "tools" not in server.requests[1]  # the critic is asked without tools
    (record,) = memory.items
    assert record.kind == AGENT_RUN and record.layer is Layer.INTERACT
    assert "change two to 2" in record.text and "commit git_commit: ok" in record.text


def test_failing_command_replans(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(step("check", "shell_exec", {"argv": ["false"]})),
        oa_verdict(False, reason="the command failed; use true instead"),
        oa_plan(step("check", "shell_exec", {"argv": ["true"]}), call_id="call_2"),
        oa_verdict(True, "The check passes."),
    )
    report = make_agent(repo).run("run the check")
    assert report.replans == 1 and report.done
    assert [(s.id, s.status) for s in report.steps] == [("check", "failed"), ("check", "ok")]
    assert report.steps[0].error == "exit status 1"
    replan_prompt = server.requests[2]["messages"][1]["content"]
    assert "- check shell_exec: failed\n" in replan_prompt
    assert '<untrusted-data source="check shell_exec error">\nexit status 1\n' in replan_prompt
    assert "use true instead" in replan_prompt


def test_independent_steps_run_concurrently(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(
            step("a", "shell_exec", {"argv": ["sleep", "2"]}),
            step("b", "shell_exec", {"argv": ["sleep", "2"]}),
            step("c", "shell_exec", {"argv": ["echo", "{{steps.a.output}}after"]}, "a", "b"),
        ),
        oa_verdict(True, "Slept twice."),
    )
    report = make_agent(repo).run("sleep twice, then say after")
    a, b, c = report.steps
    assert a.status == b.status == c.status == "ok"
    # Concurrency shows as overlapping windows (no wall-clock bound: machines are shared).
    assert a.started < b.finished and b.started < a.finished
    assert c.started >= max(a.finished, b.finished)
    assert c.output.strip() == "after"


def test_invalid_plan_is_repaired(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(step("r", "file_read", {"path": "notes.txt", "bogus": 1}, "nowhere")),
        oa_plan(step("r", "file_read", {"path": "notes.txt"}), call_id="call_2"),
        oa_verdict(True, "notes.txt holds one, two, three."),
    )
    report = make_agent(repo).run("what is in notes.txt?")
    assert report.done and [s.status for s in report.steps] == ["ok"]
    repair = server.requests[1]["messages"]
    assert repair[-2]["tool_calls"][0]["function"]["name"] == "submit_plan"
    feedback = repair[-1]
    assert feedback["role"] == "tool" and feedback["tool_call_id"] == "call_1"
    assert "unknown steps ['nowhere']" in feedback["content"]
    assert "bogus" in feedback["content"]


def test_direct_answer_needs_no_plan(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    openai_config(magray_home, server.url)
    server.add(oa_stream(["2 + 2 is 4."]))
    report = make_agent(repo).run("what is 2 + 2?")
    assert report.plan is None and report.steps == []
    assert report.result == "2 + 2 is 4." and report.done
    assert json.loads(json.dumps(report.to_dict()))["plan"] == []


def test_token_budget_stops_before_the_critic(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    openai_config(magray_home, server.url)
    server.add(oa_plan(step("s", "git_status", {})))
    report = make_agent(repo, token_budget=5).run("status")
    assert [s.status for s in report.steps] == ["ok"]
    assert report.usage.total_tokens == 10 and not report.done
    assert report.notes == ["token budget spent; the critic was not asked."]
    assert len(server.requests) == 1
