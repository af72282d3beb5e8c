"""`magray import` of chat histories and `memory add --at`, through the real default model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()
FIXTURES = Path(__file__).parents[1] / "memory" / "fixtures"


def ok_json(*args: str) -> object:
    result = RUNNER.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.model
def test_import_then_reimport_then_search_and_add_at(default_model_dir: Path) -> None:
    first = ok_json("import", "--format", "jsonl-chat", str(FIXTURES / "chat.jsonl"))
    assert first == {
        "format": "jsonl-chat",
        "per": "turn",
        "layer": "assets",
        "project": None,
        "conversations": 2,
        "turns": 3,
        "added": 3,
        "unchanged": 0,
    }
    again = ok_json("import", "--format", "jsonl-chat", str(FIXTURES / "chat.jsonl"))
    assert (again["added"], again["unchanged"]) == (0, 3)  # type: ignore[index]
    found = ok_json("memory", "search", "what is the greyhound called")
    hits = found["hits"]  # type: ignore[index]
    assert "greyhound" in hits[0]["text"] and hits[0]["occurred_at"] == "2023-03-02T18:00:00Z"

    added = ok_json("memory", "add", "We moved to Porto", "--at", "2024-02-01T10:30")
    record = ok_json("memory", "get", added["id"])  # type: ignore[index]
    assert record["occurred_at"] == "2024-02-01T10:30:00Z"  # type: ignore[index]
    assert record["created_at"] != record["occurred_at"]  # type: ignore[index]
    shown = RUNNER.invoke(app, ["memory", "get", added["id"]])  # type: ignore[index]
    assert shown.exit_code == 0 and "2024-02-01T10:30:00Z" in shown.stdout


def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "chat.jsonl"
    bad.write_text('{"session": "s", "speaker": "a", "text": "x"}\n{"session": 1}\n')
    result = RUNNER.invoke(app, ["import", "--format", "jsonl-chat", str(bad)])
    assert result.exit_code == 2
    assert "line 2 has no session" in result.stderr and "Traceback" not in result.output
    result = RUNNER.invoke(app, ["import", "--format", "slack", str(bad)])
    assert result.exit_code == 2 and "unknown format 'slack'" in result.stderr
    result = RUNNER.invoke(app, ["memory", "add", "x", "--at", "last tuesday"])
    assert result.exit_code == 2 and "--at wants an ISO date" in result.stderr


def test_a_missing_file_a_folder_and_a_pipe(tmp_path: Path) -> None:
    import os
    import threading

    missing = RUNNER.invoke(app, ["import", "--format", "chatgpt", str(tmp_path / "nope.json")])
    assert missing.exit_code == 3 and f"no file {tmp_path / 'nope.json'}" in missing.stderr
    folder = RUNNER.invoke(app, ["import", "--format", "chatgpt", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder" in folder.stderr
    fifo = tmp_path / "conversations.json"  # as `<(unzip -p export.zip conversations.json)`
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("[]"))
    writer.start()
    try:
        piped = RUNNER.invoke(app, ["import", "--format", "chatgpt", str(fifo), "--json"])
    finally:
        if writer.is_alive():  # the pipe was never opened: release the writer
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join()
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["conversations"] == 0
