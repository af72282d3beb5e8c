"""Curating memory by hand: pin, unpin, move, edit, clear, sources list and forget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def run(*args: str, input: str | None = None) -> Any:
    result = RUNNER.invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok(*args: str, input: str | None = None) -> Any:
    result = run(*args, "--json", input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pin_unpin_move_edit() -> None:
    rid = ok("memory", "add", "scratch: the deploy key rotates monthly", "--layer", "interact")[
        "id"
    ]
    assert ok("memory", "pin", rid)["pinned"] is True
    assert ok("memory", "unpin", rid)["pinned"] is False
    moved = ok("memory", "move", rid, "--layer", "assets")
    assert moved["layer"] == "assets"
    edited = ok("memory", "edit", rid, input="the deploy key rotates every 30 days")
    assert edited["id"] == rid and edited["text"] == "the deploy key rotates every 30 days"
    hits = ok("memory", "search", "deploy key rotation", "--mode", "keyword")["hits"]
    assert [h["id"] for h in hits] == [rid]
    assert ok("memory", "search", "monthly", "--mode", "keyword")["hits"] == []
    twin = ok("memory", "add", "the deploy key rotates every 30 days", "--layer", "interact")
    clash = run("memory", "move", twin["id"], "--layer", "assets")
    assert clash.exit_code == 2 and "already holds the same text" in clash.stderr
    missing = run("memory", "pin", "zzzzzzzz")
    assert missing.exit_code == 3


def test_move_to_the_layer_it_is_in_changes_nothing() -> None:
    rid = ok("memory", "add", "the build cache lives in /var/cache/ci", "--layer", "insights")["id"]
    before = ok("memory", "get", rid)
    again = run("memory", "move", rid, "--layer", "insights")
    assert again.exit_code == 0 and "already in insights; nothing changed" in again.stdout
    after = ok("memory", "get", rid)
    assert after == before  # the TTL still counts from when it got there
    assert "moved to assets" in run("memory", "move", rid, "--layer", "assets").stdout


def test_pinning_a_pinned_memory_or_unpinning_an_unpinned_one_changes_nothing() -> None:
    rid = ok("memory", "add", "the staging host is blue-7")["id"]
    before = ok("memory", "get", rid)
    unpinned = run("memory", "unpin", rid)
    assert unpinned.exit_code == 0 and "not pinned; nothing changed" in unpinned.stdout
    assert ok("memory", "get", rid) == before  # not even its update time
    assert "pinned in assets (never expires)" in run("memory", "pin", rid).stdout
    pinned = ok("memory", "get", rid)
    again = run("memory", "pin", rid)
    assert "already pinned; nothing changed in assets" in again.stdout
    assert ok("memory", "get", rid) == pinned
    assert "unpinned in assets" in run("memory", "unpin", rid).stdout
    assert ok("memory", "get", rid)["pinned"] is before["pinned"] is False


def test_clear_a_layer_asks_and_keeps_other_layers() -> None:
    keep = ok("memory", "add", "kept in assets")["id"]
    for i in range(3):
        ok("memory", "add", f"passing thought {i}", "--layer", "interact")
    dry = ok("memory", "clear", "--layer", "interact", "--dry-run")
    assert dry == {"layer": "interact", "dry_run": True, "forgotten": 3}
    refused = run("memory", "clear", "--layer", "interact")  # piped: no one to ask
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert ok("memory", "clear", "--layer", "interact", "--yes")["forgotten"] == 3
    listed = ok("memory", "list", "--limit", "50")["records"]
    assert [r["id"] for r in listed] == [keep]


def test_sources_list_and_forget_by_source_or_project(tmp_path: Path) -> None:
    notes, code = tmp_path / "notes", tmp_path / "code"
    notes.mkdir()
    code.mkdir()
    (notes / "a.md").write_text("# Alpha\n\nThe alpha release ships in May.\n")
    (notes / "b.md").write_text("# Beta\n\nBeta testers meet on Fridays.\n")
    (code / "c.py").write_text("def gamma():\n    return 'gamma'\n")
    assert run("ingest", str(notes), "--project", "notes").exit_code == 0
    assert run("ingest", str(code), "--project", "code").exit_code == 0
    paths = {s["path"] for s in ok("sources", "list")["sources"]}
    assert paths == {str(notes / "a.md"), str(notes / "b.md"), str(code / "c.py")}
    assert {s["path"] for s in ok("sources", "list", "--project", "code")["sources"]} == {
        str(code / "c.py")
    }
    dry = ok("forget", "--source", str(notes / "a.md"), "--dry-run")
    assert dry["dry_run"] is True and dry["forgotten"] >= 1
    assert ok("forget", "--source", str(notes / "a.md"), "--yes")["forgotten"] == dry["forgotten"]
    assert str(notes / "a.md") not in {s["path"] for s in ok("sources", "list")["sources"]}
    assert ok("forget", "--project", "code", "--yes")["forgotten"] >= 1
    assert {s["path"] for s in ok("sources", "list")["sources"]} == {str(notes / "b.md")}
    # The forgotten file comes back on the next ingest.
    again = run("ingest", str(notes), "--project", "notes")
    assert again.exit_code == 0 and "1 added" in again.stdout
    nothing = run("forget")
    assert nothing.exit_code == 2 and "--source" in nothing.stderr
    # A source or project nothing came from is named, not "forgot 0 record(s)".
    for args, named in (
        (("--source", str(notes / "z.md")), f"ingested from {notes / 'z.md'}"),
        (("--project", "cdoe", "--yes"), "in project 'cdoe'"),
        (("--source", str(code), "--project", "notes"), "in project 'notes'"),
    ):
        missed = run("forget", *args)
        assert missed.exit_code == 3 and missed.stdout == "", missed.output
        assert named in missed.stderr and "`magray sources list`" in missed.stderr
        assert missed.stderr.count("\n") == 1
    assert {s["path"] for s in ok("sources", "list")["sources"]} == {
        str(notes / "a.md"),
        str(notes / "b.md"),
    }


def test_reading_commands_on_a_fresh_home_create_nothing(magray_home: Path) -> None:
    for args in (
        ("memory", "stats"),
        ("memory", "list"),
        ("memory", "verify"),
        ("memory", "export", "-"),
        ("sources", "list"),
        ("tasks", "list"),
    ):
        result = run(*args)
        assert result.exit_code == 0, (args, result.output)
    assert run("memory", "get", "abcd").exit_code == 3
    assert not (magray_home / "data").exists()
    stats = ok("memory", "stats")
    assert stats["db_bytes"] == 0 and stats["path"] == str(magray_home / "data" / "memory.db")


def test_move_takes_the_layer_as_an_argument_or_an_option_but_not_two() -> None:
    rid = ok("memory", "add", "the nightly job runs at 02:00", "--layer", "interact")["id"]
    assert ok("memory", "move", rid, "insights")["layer"] == "insights"
    both = run("memory", "move", rid, "assets", "--layer", "interact")
    assert both.exit_code == 2 and "two layers given" in both.stderr
    neither = run("memory", "move", rid)
    assert neither.exit_code == 2 and "--layer assets" in neither.stderr
    assert ok("memory", "get", rid)["layer"] == "insights"
    assert ok("memory", "move", rid, "assets", "--layer", "assets")["layer"] == "assets"


def test_an_export_filtered_to_nothing_warns(tmp_path: Path) -> None:
    ok("memory", "add", "the nightly job runs at 02:00", "--project", "ops")
    out = tmp_path / "m.jsonl"
    none = run("memory", "export", str(out), "--project", "opz")
    assert none.exit_code == 0 and "no memory matched --project opz" in none.stderr
    assert out.read_text(encoding="utf-8").count("\n") == 1  # the header line only
    some = run("memory", "export", str(out), "--project", "ops")
    assert some.exit_code == 0 and "no memory matched" not in some.stderr
