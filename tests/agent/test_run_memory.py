"""What `magray run` remembers, and what the planner recalls of earlier runs.

Only a run that worked is stored (kind ``agent_run``, tag ``run:succeeded``); a dry run, a
denied or failed run and a direct answer store nothing, and the planner never sees an agent
run that is not marked as having worked (one stored by an older MAGRAY, say). Real SQLite
memory with the real embedding model; the LLM is a scripted server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.memory.records import Filters, Layer, NewRecord, Record, Source

from .conftest import Scripted, git, oa_plan, oa_stream, oa_verdict, openai_config, run, step


@pytest.fixture
def memory(default_model_dir: Path, magray_home: Path) -> Iterator[object]:
    """Opens the home's real memory service on demand (closed between CLI runs)."""
    from magray.config import load_settings
    from magray.memory.service import Memory

    opened: list[Memory] = []

    def open_memory() -> Memory:
        m = Memory(load_settings())
        opened.append(m)
        return m

    yield open_memory
    for m in opened:
        m.close()


def agent_runs(open_memory: object) -> list[Record]:
    m = open_memory()  # type: ignore[operator]
    try:
        return list(m.list_records(Filters(kind="agent_run")))
    finally:
        m.close()


def edit_plan() -> object:
    return oa_plan(
        step("edit", "file_edit", {"path": "notes.txt", "search": "two", "replace": "2"})
    )


def test_a_dry_run_stores_nothing(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_plan())
    result = run(["write two as a digit in notes.txt", "--dry-run", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"
    assert agent_runs(memory) == []


def test_a_denied_run_stores_nothing(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_plan())
    result = run(["write two as a digit in notes.txt", "--root", str(repo), "--json"])
    assert result.exit_code == 4  # nobody to ask, no --yes
    assert agent_runs(memory) == []


def test_a_failed_run_stores_nothing(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(step("check", "shell_exec", {"argv": ["false"]})),
        oa_verdict(False, reason="the check failed"),
    )
    args = ["run the check", "--yes", "--max-replans", "0", "--root", str(repo), "--json"]
    result = run(args)
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["steps"][0]["status"] == "failed"
    assert agent_runs(memory) == []


def test_a_failed_step_is_not_a_worked_example_even_if_the_critic_says_done(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(step("check", "shell_exec", {"argv": ["false"]})),
        oa_verdict(True, "The check ran."),
    )
    result = run(["run the check", "--yes", "--root", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    assert agent_runs(memory) == []


def test_a_direct_answer_stores_nothing(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(oa_stream(["Paris."]))
    result = run(["what is the capital of France?", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Paris."
    assert agent_runs(memory) == []


def test_a_run_that_worked_is_stored_marked(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_plan(), oa_verdict(True, "Done."))
    result = run(["write two as a digit in notes.txt", "--yes", "--root", str(repo)])
    assert result.exit_code == 0, result.output
    (record,) = agent_runs(memory)
    assert "run:succeeded" in record.tags and "source:agent" in record.tags
    assert "edit file_edit: ok" in record.text
    assert git(repo, "status", "--porcelain").strip() == "M notes.txt"


def test_planning_recalls_only_runs_that_worked(
    server: Scripted, magray_home: Path, repo: Path, memory: object
) -> None:
    """An unmarked agent run (a dry run's wrong plan stored by an older MAGRAY) is never
    shown to the planner; a marked one and the user's own note are."""
    m = memory()  # type: ignore[operator]
    source = Source(uri="magray:agent-run")
    for text, tags in (
        (
            "Agent run: stage notes.txt for commit\nResult: dry run: the plan was previewed"
            "\n- s1 file_write: ok WRONG-PLAN-MARKER",
            ("agent", "source:agent"),
        ),
        (
            "Agent run: stage notes.txt for commit\nResult: staged\n- s1 git_add: ok "
            "GOOD-PLAN-MARKER",
            ("agent", "source:agent", "run:succeeded"),
        ),
    ):
        m.remember(
            NewRecord(text=text, layer=Layer.INTERACT, kind="agent_run", tags=tags, source=source)
        )
    m.remember(NewRecord(text="notes.txt is staged with git add USER-NOTE-MARKER"))
    m.close()

    openai_config(magray_home, server.url)
    server.add(oa_plan(step("add", "git_add", {"paths": ["notes.txt"]})), oa_verdict(True, "ok"))
    result = run(["stage notes.txt for commit", "--yes", "--root", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    prompt = json.dumps(server.requests[0]["messages"])
    assert "USER-NOTE-MARKER" in prompt and "GOOD-PLAN-MARKER" in prompt
    assert "WRONG-PLAN-MARKER" not in prompt
