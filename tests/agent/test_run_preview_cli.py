"""`magray run` shows each acting step's diff or command line before asking to run the plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.agent.preview import shorten
from magray.cli.main import app

from .conftest import Scripted, oa_plan, oa_verdict, openai_config, step

RUNNER = CliRunner()


def ask_about(
    plan: object, repo: Path, monkeypatch: pytest.MonkeyPatch, server: Scripted, home: Path
) -> str:
    monkeypatch.setattr("magray.cli.run._interactive", lambda: True)
    openai_config(home, server.url)
    server.add(plan, oa_verdict(True, "Done."))
    args = ["run", "change the notes", "--root", str(repo), "--no-memory"]
    result = RUNNER.invoke(app, args, input="n\n")
    assert result.exit_code == 1, result.output  # not approved: nothing ran
    return result.stderr


def test_the_diff_and_the_argv_come_before_the_question(
    server: Scripted, magray_home: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = oa_plan(
        step("look", "file_read", {"path": "notes.txt"}),
        step("edit", "file_edit", {"path": "notes.txt", "search": "two", "replace": "2"}, "look"),
        step("add", "git_add", {"paths": ["notes.txt"]}, "edit"),
    )
    err = ask_about(plan, repo, monkeypatch, server, magray_home)
    shown = err[err.index("What it will change:") : err.index("Run this plan?")]
    assert "  edit (file_edit):\n    --- a/notes.txt\n    +++ b/notes.txt\n" in shown
    assert "    -two\n    +2\n" in shown
    assert f"  add (git_add):\n    git add -- {(repo / 'notes.txt').resolve()}\n" in shown
    assert "look (file_read)" not in shown  # reading changes nothing: no preview
    assert (repo / "notes.txt").read_text() == "one\ntwo\nthree\n"


def test_a_long_diff_is_cut_and_says_how_much(
    server: Scripted, magray_home: Path, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = "".join(f"line {i}\n" for i in range(100))
    plan = oa_plan(step("write", "file_write", {"path": "big.txt", "content": content}))
    err = ask_about(plan, repo, monkeypatch, server, magray_home)
    shown = err[err.index("What it will change:") : err.index("Run this plan?")]
    assert "    +line 0\n" in shown and "+line 99" not in shown
    assert "more lines not shown" in shown
    assert not (repo / "big.txt").exists()


def test_shorten_counts_the_lines_it_cuts() -> None:
    assert shorten("a\nb\nc\n", 5) == ("a\nb\nc", 0)
    assert shorten("\n".join(str(i) for i in range(10)), 4) == ("0\n1\n2\n3", 6)
