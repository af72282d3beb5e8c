"""`magray run` through the CLI runner: JSON report, denials (exit 4), approval, memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.tools.audit import AuditLog

from .conftest import Scripted, git, oa_plan, oa_verdict, openai_config, run, step

RUNNER = CliRunner()


def edit_commit_plan() -> Any:
    return oa_plan(
        step("edit", "file_edit", {"path": "notes.txt", "search": "two", "replace": "2"}),
        step("add", "git_add", {"paths": ["notes.txt"]}, "edit"),
        step("commit", "git_commit", {"message": "Digits"}, "add"),
    )


def test_run_json_edits_commits_and_remembers(
    server: Scripted, magray_home: Path, repo: Path, default_model_dir: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan(), oa_verdict(True, "Committed."))
    result = run(["change two to 2 and commit", "--yes", "--root", str(repo), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= {"goal", "plan", "steps", "result", "replans"}
    assert out["plan"][2] == {
        "id": "commit",
        "tool": "git_commit",
        "args": {"message": "Digits"},
        "depends_on": ["add"],
    }
    assert [(s["id"], s["status"], s["decision"]) for s in out["steps"]] == [
        ("edit", "ok", "allow"),
        ("add", "ok", "allow"),
        ("commit", "ok", "allow"),
    ]
    assert set(out["steps"][0]) >= {"id", "tool", "status", "decision", "output", "error"}
    assert out["result"] == "Committed." and out["replans"] == 0
    assert "edit: file_edit(" in result.stderr  # the plan is shown before it runs
    assert git(repo, "log", "--format=%s", "-1").strip() == "Digits"
    from magray.config import load_settings
    from magray.memory.records import Filters
    from magray.memory.service import Memory

    memory = Memory(load_settings())
    try:
        (record,) = memory.list_records(Filters(kind="agent_run"))
    finally:
        memory.close()
    assert "change two to 2 and commit" in record.text


def test_non_interactive_without_yes_is_denied(
    server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    result = run(["change two to 2 and commit", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 4
    out = json.loads(result.stdout)
    assert [s["status"] for s in out["steps"]] == ["denied", "skipped", "skipped"]
    assert "nobody can be asked" in out["steps"][0]["error"]
    assert out["result"].startswith("stopped: step edit (file_edit) was denied")
    assert "step edit was denied" in out["steps"][1]["error"]
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"
    assert len(server.requests) == 1  # no critic, no re-plan after a denial


def test_write_outside_root_is_denied_and_audited(
    server: Scripted, magray_home: Path, repo: Path, tmp_path: Path
) -> None:
    openai_config(magray_home, server.url)
    outside = tmp_path / "outside.txt"
    server.add(
        oa_plan(
            step("w", "file_write", {"path": str(outside), "content": "x"}),
            step("log", "git_log", {}, "w"),
        )
    )
    result = run(["write outside", "--yes", "--root", str(repo), "--no-memory"])
    assert result.exit_code == 4
    assert "error: stopped: step w (file_write) was denied" in result.stderr
    assert "outside the workspace roots" in result.stderr
    assert not outside.exists()
    from magray.config import load_settings
    from magray.tools.audit import audit_file

    rows = AuditLog(audit_file(load_settings().paths.data_dir)).rows(5)
    assert [(r.tool, r.decision, r.outcome) for r in rows] == [("file_write", "deny", "denied")]


def test_deny_rule_beats_yes(server: Scripted, magray_home: Path, repo: Path) -> None:
    openai_config(magray_home, server.url)
    assert RUNNER.invoke(app, ["policy", "deny", "git_commit"]).exit_code == 0
    server.add(edit_commit_plan())
    result = run(["edit and commit", "--yes", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 4
    out = json.loads(result.stdout)
    assert [s["status"] for s in out["steps"]] == ["ok", "ok", "denied"]
    assert "policy rule: deny git_commit" in out["steps"][2]["error"]


def test_dry_run_changes_nothing(server: Scripted, magray_home: Path, repo: Path) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    result = run(["edit and commit", "--dry-run", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [s["status"] for s in out["steps"]] == ["ok", "ok", "ok"]
    assert "-two" in out["steps"][0]["output"] and "+2" in out["steps"][0]["output"]
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"
    assert git(repo, "log", "--format=%s").split("\n")[0] == "initial"


@pytest.mark.parametrize("flag", ["--read-only"])
def test_read_only_denies_writes(
    server: Scripted, magray_home: Path, repo: Path, flag: str
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    result = run(["edit", flag, "--yes", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 4
    assert "read-only" in json.loads(result.stdout)["steps"][0]["error"]


@pytest.mark.parametrize(("answer", "code"), [("y\n", 0), ("n\n", 1)])
def test_interactive_plan_approval(
    server: Scripted,
    magray_home: Path,
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: str,
    code: int,
) -> None:
    monkeypatch.setattr("magray.cli.run._interactive", lambda: True)
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan(), oa_verdict(True, "Committed."))
    args = ["edit and commit", "--root", str(repo), "--json", "--no-memory"]
    result = RUNNER.invoke(app, ["run", *args], input=answer)
    assert result.exit_code == code, result.output
    assert "Run this plan?" in result.stderr
    out = json.loads(result.stdout[result.stdout.index("{") :])  # after the echoed answer
    if code == 0:
        assert [s["decision"] for s in out["steps"]] == ["allow"] * 3
        assert git(repo, "log", "--format=%s", "-1").strip() == "Digits"
    else:
        assert out["steps"] == [] and "not approved" in out["result"]
        assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"


def test_save_tasks_stores_the_plan(server: Scripted, magray_home: Path, repo: Path) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    args = ["edit and commit", "--dry-run", "--save-tasks", "--root", str(repo), "--json"]
    result = run([*args, "--no-memory"])
    assert result.exit_code == 0, result.output
    ids = json.loads(result.stdout)["tasks"]
    from magray.tasks.graph import TaskGraph

    with TaskGraph(magray_home / "data" / "tasks.db") as graph:
        commit = graph.resolve(ids[2])
    assert commit.title.startswith("git_commit: ")
    assert json.loads(commit.notes) == {"message": "Digits"}


def test_save_tasks_of_a_request_of_several_lines_makes_one_line_titles(
    server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    args = ["edit\n\tand commit", "--dry-run", "--save-tasks", "--root", str(repo), "--json"]
    result = run([*args, "--no-memory"])
    assert result.exit_code == 0, result.output
    from magray.tasks.graph import TaskGraph

    with TaskGraph(magray_home / "data" / "tasks.db") as graph:
        titles = [graph.resolve(i).title for i in json.loads(result.stdout)["tasks"]]
    assert len(titles) == 3 and all(t.isprintable() for t in titles), titles


def test_dry_run_text_shows_previews_and_a_failing_step_is_not_done(
    server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(edit_commit_plan())
    result = run(["edit and commit", "--dry-run", "--root", str(repo), "--no-memory"])
    assert result.exit_code == 0, result.output
    assert "edit file_edit: ok" in result.stderr and "-two" in result.stderr
    assert "+2" in result.stderr

    server.add(
        oa_plan(step("edit", "file_edit", {"path": "nope.txt", "search": "a", "replace": "b"}))
    )
    result = run(["edit", "--dry-run", "--root", str(repo), "--json", "--no-memory"])
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["done"] is False and out["steps"][0]["status"] == "error"
    assert out["result"].startswith("dry run: step edit (file_edit) would fail:")


def test_replan_is_labelled_and_results_follow_their_plan(
    server: Scripted, magray_home: Path, repo: Path
) -> None:
    openai_config(magray_home, server.url)
    server.add(
        oa_plan(step("r", "file_read", {"path": "missing.txt"})),
        oa_verdict(False, reason="the file does not exist"),
        oa_plan(step("r", "file_read", {"path": "notes.txt"})),
        oa_verdict(True, "one two three"),
    )
    result = run(["read the notes", "--root", str(repo), "--no-memory"])
    assert result.exit_code == 0, result.output
    err = result.stderr
    first, replan = err.index("Plan for: read the notes"), err.index("Re-plan 1 for:")
    failed, ok = err.index("r file_read: error"), err.index("r file_read: ok")
    assert first < failed < replan < ok
