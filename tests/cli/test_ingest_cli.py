"""`magray ingest` never forgets what it did not walk: regressions of real sessions.

Sources are stored by absolute path, so ingesting `.` from one folder and then from another,
or one folder reached two ways, keeps every file; damage left by older versions is found by
`memory verify` and repaired by ingesting again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def run(args: Sequence[str]) -> Any:
    result = RUNNER.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def files(args: Sequence[str]) -> dict[str, int]:
    result = run(["ingest", *args, "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)["files"]
    assert isinstance(counts, dict)
    return counts


def uris() -> set[str]:
    listed = run(["memory", "list", "--json", "--limit", "100"])
    return {r["source"]["uri"] for r in json.loads(listed.stdout)["records"]}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "notes").mkdir()
    (tmp_path / "code").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Notes\n\nPenguins live in the south.\n")
    (tmp_path / "code" / "b.py").write_text("def fly():\n    return False\n")
    return tmp_path


def test_ingest_dot_from_two_folders_keeps_both(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes, code = workspace / "notes", workspace / "code"
    monkeypatch.chdir(notes)
    assert files(["."]) == {"added": 1, "updated": 0, "unchanged": 0, "removed": 0}
    monkeypatch.chdir(code)
    assert files(["."]) == {"added": 1, "updated": 0, "unchanged": 0, "removed": 0}
    monkeypatch.chdir(workspace)  # the same folder reached another way
    assert files(["notes"]) == {"added": 0, "updated": 0, "unchanged": 1, "removed": 0}
    monkeypatch.chdir(notes)
    assert files(["."]) == {"added": 0, "updated": 0, "unchanged": 1, "removed": 0}
    real = workspace.resolve()
    assert uris() == {f"{real}/notes/a.md", f"{real}/code/b.py"}
    (notes / "a.md").unlink()
    human = run(["ingest", "."])
    assert human.stdout.startswith("files: 0 added, 0 updated, 0 unchanged, 1 removed")
    assert f"forgot {real}/notes/a.md" in human.stderr
    assert uris() == {f"{real}/code/b.py"}


def test_store_damaged_by_an_older_version_is_found_and_repaired(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, magray_home: Path
) -> None:
    """An older MAGRAY stored `a.md` relative to the folder and lost its records."""
    notes = workspace / "notes"
    monkeypatch.chdir(notes)
    files(["."])
    (notes / "c.md").write_text("# More\n\nEmperor penguins huddle in winter.\n")
    files(["."])
    db = sqlite3.connect(magray_home / "data" / "memory.db")
    with db:
        for name in ("a.md", "c.md"):
            path = str((notes / name).resolve())
            db.execute("UPDATE ingested_sources SET uri = ? WHERE uri = ?", (name, path))
            db.execute("UPDATE records SET source_uri = ? WHERE source_uri = ?", (name, path))
        db.execute("DELETE FROM records WHERE source_uri = 'a.md'")
    db.close()
    verify = run(["memory", "verify", "--json"])
    assert verify.exit_code == 1
    report = json.loads(verify.stdout)
    assert report["checked"]["relative_sources"] == 2
    [problem] = report["problems"]
    assert str((notes / "a.md").resolve()) in problem and "magray ingest" in problem
    # ingesting again adopts the relative paths and brings the lost chunks back
    assert files(["."]) == {"added": 0, "updated": 1, "unchanged": 1, "removed": 0}
    real = notes.resolve()
    assert uris() == {f"{real}/a.md", f"{real}/c.md"}
    again = run(["memory", "verify", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["checked"]["relative_sources"] == 0


def test_truncated_chunks_are_reported_once_at_the_end(tmp_path: Path) -> None:
    import logging
    import secrets

    from magray.embed import onnx

    before = onnx.truncated_count()
    notes = tmp_path / "notes"
    notes.mkdir()
    # hex runs tokenize into many word pieces: one chunk far past the model's 256 tokens
    (notes / "hashes.txt").write_text(" ".join(secrets.token_hex(12) for _ in range(60)))
    onnx._truncated = 0  # as in a fresh process: the embedder's first-truncation warning is due
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("magray").addHandler(handler)
    try:
        result = run(["ingest", str(notes)])
    finally:
        logging.getLogger("magray").removeHandler(handler)
        onnx._truncated = max(onnx._truncated, before)
    assert result.exit_code == 0, result.output
    assert not [r for r in seen if "embedded truncated" in r.getMessage()]
    assert "2 chunk(s) were longer than the embedding model's limit" in result.output
    assert result.output.count("longer than") == 1


def test_named_files_none_of_which_can_be_read_are_an_error(tmp_path: Path) -> None:
    import os

    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    (tmp_path / "gone.md").symlink_to(tmp_path / "deleted.md")
    failed = run(["ingest", str(image), str(pipe)])
    assert failed.exit_code == 1 and failed.stdout == ""
    line = failed.stderr.strip()
    assert "\n" not in line and line.startswith("error: nothing was ingested (")
    assert "photo.png: binary" in line and "pipe: not a regular file" in line
    broken = run(["ingest", str(tmp_path / "gone.md")])
    assert broken.exit_code == 3 and "is a broken symbolic link" in broken.stderr
    # A named text file beside them is ingested; a folder with nothing readable is no error.
    (tmp_path / "notes.md").write_text("# Notes\n\nPenguins live in the south.\n")
    assert run(["ingest", str(image), str(tmp_path / "notes.md")]).exit_code == 0
    empty = tmp_path / "images"
    empty.mkdir()
    (empty / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert run(["ingest", str(empty)]).exit_code == 0


def test_a_file_name_with_a_newline_or_an_escape_stays_one_printed_line(tmp_path: Path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "a\nb.md").write_text("# Notes\n\nPenguins live in the south.\n")
    (folder / "c\x1b[31md.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    done = run(["ingest", str(folder)])
    assert done.exit_code == 0, done.output
    assert "skipped " in done.stderr and "c\\x1b[31md.png: binary" in done.stderr
    assert "\x1b" not in done.stderr
    listed = run(["sources", "list"])
    assert listed.stdout == f"{folder}/a\\nb.md  assets  1 chunk(s)\n"
    data = json.loads(run(["sources", "list", "--json"]).stdout)
    assert data["sources"][0]["path"] == f"{folder}/a\nb.md"  # JSON keeps the real name
