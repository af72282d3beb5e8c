"""`magray tasks` JSON contracts, text output and exit codes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def run(*args: str) -> Result:
    result = RUNNER.invoke(app, ["tasks", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fails(args: Sequence[str], code: int, needle: str) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert needle in result.stderr
    assert result.stderr.strip().count("\n") == 0  # one line


def remember(text: str) -> str:
    """The id of a new memory holding ``text`` (real store, real embedding model)."""
    result = RUNNER.invoke(app, ["memory", "add", text, "--json"])
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["id"])


def test_add_list_show_ready_done_contracts() -> None:
    mem = remember("The design review is on Thursday.")
    a = ok_json("add", "Design", "--priority", "2", "--note", "why", "--memory", mem[:6])
    assert a == {"id": a["id"], "title": "Design", "state": "todo", "priority": 2, "depends_on": []}
    b = ok_json("add", "Build", "--depends", a["id"][:4])
    assert b["depends_on"] == [a["id"]]

    listed = ok_json("list")
    assert [x["id"] for x in listed] == [a["id"], b["id"]]
    assert set(listed[0]) == {
        "id", "title", "notes", "state", "priority", "depends_on", "memory",
        "created_at", "updated_at", "done_at",
    }  # fmt: skip
    assert listed[0]["memory"] == [mem] and listed[0]["notes"] == "why"  # the full id

    shown = ok_json("show", b["id"])
    assert shown["depends_on"] == [a["id"]] and shown["dependents"] == []
    assert ok_json("show", a["id"])["dependents"] == [b["id"]]

    assert [x["id"] for x in ok_json("ready")] == [a["id"]]
    done = ok_json("done", a["id"])
    assert done == {"id": a["id"], "state": "done", "unblocked": [b["id"]]}
    assert [x["id"] for x in ok_json("ready")] == [b["id"]]
    assert [x["id"] for x in ok_json("list", "--state", "done")] == [a["id"]]
    assert ok_json("list", "--state", "DONE", "--state", "todo") == ok_json("list")


def test_a_memory_link_must_name_a_stored_memory() -> None:
    fails(["add", "Design", "--memory", "nosuchmemory"], 3, "no memory with id 'nosuchmemory'")
    mem = remember("The staging database listens on port 5434.")
    fails(["add", "Design", "--memory", mem, "--memory", "zzzz9999"], 3, "'zzzz9999'")
    assert ok_json("list") == []  # nothing was added
    added = ok_json("add", "Design", "--memory", mem.upper(), "--memory", mem[:5])
    assert ok_json("show", added["id"])["memory"] == [mem]


def test_text_output() -> None:
    a = ok_json("add", "First", "-p", "1")["id"]
    b = ok_json("add", "Second", "--depends", a)["id"]
    assert run("list").stdout == f"[ ] {a}  P1  First\n[ ] {b}  P3  Second\n"
    assert run("graph").stdout == f"[ ] {a}  P1  First\n└─ [ ] {b}  P3  Second\n"
    mermaid = run("graph", "--mermaid").stdout
    assert mermaid.startswith("graph TD\n") and f"    {a} --> {b}\n" in mermaid
    result = run("done", a)
    assert result.stdout == f"{a}  done\nnow ready: {b}  Second\n"


def test_depends_cycle_and_self_exit_codes() -> None:
    a = ok_json("add", "A")["id"]
    b = ok_json("add", "B", "--depends", a)["id"]
    fails(["depends", a, b], 1, f"cycle: {a} → {b} → {a}")
    fails(["depends", a, a], 2, "cannot depend on itself")
    result = run("depends", b, a)  # already there: idempotent
    assert result.exit_code == 0 and result.stdout == f"{b}  depends on {a}\n"


def test_rm_refusal_and_force() -> None:
    a = ok_json("add", "A")["id"]
    b = ok_json("add", "B", "--depends", a)["id"]
    fails(["rm", a], 1, "--force")
    assert run("rm", a, "--force").stdout == f"{a}  removed\n"
    assert ok_json("show", b)["depends_on"] == []


def test_user_errors_exit_codes() -> None:
    fails(["show", "zzzz"], 3, "no task with id")
    fails(["done", "zzzz"], 3, "no task with id")
    fails(["add", "x", "--depends", "zzzz"], 3, "no task with id")
    fails(["add", "x", "--priority", "6"], 2, "priority must be 1")
    fails(["list", "--state", "later"], 2, "unknown task state")
    fails(["show", "ab"], 2, "at least 3 characters")


def test_states_and_edit() -> None:
    a = ok_json("add", "Write the runbook")
    b = ok_json("add", "Publish it", "--depends", a["id"])
    assert ok_json("start", a["id"])["state"] == "doing"
    assert ok_json("block", a["id"])["state"] == "blocked"
    assert ok_json("cancel", b["id"])["state"] == "cancelled"
    assert ok_json("reopen", b["id"])["state"] == "todo"
    renamed = ok_json("edit", a["id"], "--title", "Write the on-call runbook", "--priority", "1")
    assert renamed["title"] == "Write the on-call runbook" and renamed["priority"] == 1
    assert run("edit", a["id"]).exit_code == 2
    fails(["edit", a["id"], "--title", "  "], 2, "cannot be empty")
    fails(["edit", a["id"], "--priority", "9"], 2, "priority must be 1")
    fails(["start", "zzzz"], 3, "zzzz")


def test_moving_a_task_to_the_state_it_is_in_changes_nothing() -> None:
    """`tasks done` of a done task said "done" again and touched its update time."""
    a = ok_json("add", "Rotate the keys")
    assert run("done", a["id"]).stdout == f"{a['id']}  done\n"
    done = ok_json("show", a["id"])
    assert run("done", a["id"]).stdout == f"{a['id']}  already done; nothing changed\n"
    assert ok_json("show", a["id"]) == done
    assert run("reopen", a["id"]).stdout == f"{a['id']}  todo\n"
    again = run("reopen", a["id"])
    assert again.stdout == f"{a['id']}  already todo; nothing changed\n"


def test_reading_a_fresh_home_creates_nothing(magray_home: Path) -> None:
    for args in (("list",), ("ready",), ("graph",)):
        assert run(*args).exit_code == 0
    assert run("show", "abcd").exit_code == 3
    assert not (magray_home / "data").exists()


def test_starting_or_finishing_before_a_dependency_warns_and_still_moves() -> None:
    a = ok_json("add", "Design")["id"]
    b = ok_json("add", "Build", "--depends", a)["id"]
    started = run("start", b)
    assert started.exit_code == 0 and started.stdout == f"{b}  doing\n"
    assert f"warning: {b} depends on {a} (todo), not done yet" in started.stderr
    finished = run("done", b, "--json")
    assert finished.exit_code == 0 and json.loads(finished.stdout)["state"] == "done"
    assert f"{a} (todo)" in finished.stderr
    assert run("done", a).stderr == ""  # nothing it waits for
    assert run("reopen", b).exit_code == 0
    assert run("start", b).stderr == ""  # its dependency is done now


def test_a_title_is_one_line_of_text() -> None:
    for title in ("line one\nline two", "tab\there", "bell\a", "esc \x1b[31mred"):
        fails(["add", title], 2, "a task title is one line of text")
    assert ok_json("list") == []
    a = ok_json("add", "Design")["id"]
    fails(["edit", a, "--title", "two\nlines"], 2, "put the rest in the notes")
    assert ok_json("add", "  ünïcode ✓ title  ")["title"] == "ünïcode ✓ title"


def test_a_title_of_dash_is_read_from_standard_input() -> None:
    result = RUNNER.invoke(app, ["tasks", "add", "-", "--json"], input="Write the notes\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["title"] == "Write the notes"
    result = RUNNER.invoke(app, ["tasks", "add", "-"], input="one\ntwo\n")
    assert result.exit_code == 2 and "one line of text" in result.stderr
