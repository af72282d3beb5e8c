"""`magray chat` scripted through piped stdin, and `magray bench llm`, with the real local model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli import render
from magray.cli.ask import TINY_MODEL_NOTE
from magray.cli.main import app

RUNNER = CliRunner()
LOCAL_TOML = '[llm.providers.local]\ntype = "local"\nmodel = "local-tiny"\nthreads = 1\n'


@pytest.fixture
def home(magray_home: Path, local_gguf: Path, default_model_dir: Path) -> Path:
    (magray_home / "config.toml").write_text(LOCAL_TOML, encoding="utf-8")
    return magray_home


def test_chat_piped_session(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "_noted", set())
    script = "\n".join(
        [
            "What is the capital of France?",
            "/remember The Quillon ferry leaves at seven",
            "/search Quillon ferry",
            "/provider",
            "/provider nope",
            "/model",
            "/bogus",
            "/clear",
            "/help",
            "And the capital of Italy?",
            "/exit",
            "never read after /exit",
        ]
    )
    done = RUNNER.invoke(app, ["chat"], input=script + "\n")
    assert done.exception is None or isinstance(done.exception, SystemExit)
    # the chat went on after the error line, and a piped chat then exits with its code
    assert done.exit_code == 2, done.output
    out = done.stdout
    assert "remembered " in out and "in insights" in out
    kept = out.split("remembered ", 1)[1].split(" ", 1)[0]
    assert f"1. {kept} [insights] The Quillon ferry leaves at seven" in out
    assert "provider: local" in out
    assert "model: " in out
    assert "unknown command /bogus" in out
    assert "new conversation" in out and "/remember TEXT" in out
    assert "no LLM provider named 'nope'" in done.stderr  # an error line, and chat went on
    assert done.stderr.count(TINY_MODEL_NOTE) == 1  # once per chat, not per answer

    logs = json.loads(RUNNER.invoke(app, ["logs", "-n", "10", "--json"]).stdout)
    assert [t["prompt"] for t in reversed(logs)] == [
        "What is the capital of France?",
        "And the capital of Italy?",
    ]
    assert logs[0]["conversation_id"] != logs[1]["conversation_id"]  # /clear started anew
    for turn in logs:
        assert turn["answer"] and turn["answer"] in out  # streamed to stdout
    insights = json.loads(
        RUNNER.invoke(app, ["memory", "list", "--layer", "insights", "--json"]).stdout
    )["records"]
    assert [r["id"] for r in insights] == [kept]
    exchanges = json.loads(
        RUNNER.invoke(app, ["memory", "list", "--layer", "interact", "--json"]).stdout
    )["records"]
    assert {r["session"] for r in exchanges} == {t["conversation_id"] for t in logs}


def test_chat_unknown_provider_fails_fast(home: Path) -> None:
    done = RUNNER.invoke(app, ["chat", "--provider", "nope"], input="hello\n")
    assert done.exit_code == 2
    assert "configured: local" in done.stderr


def test_bench_llm_json_shape(home: Path) -> None:
    done = RUNNER.invoke(app, ["bench", "llm", "--runs", "1", "--max-tokens", "8", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["provider"] == "local" and report["model"]
    assert report["runs"] == 1 and report["max_tokens"] == 8
    for side in ("magray", "raw_llama_cpp"):
        assert set(report[side]) >= {"tokens_per_s", "first_token_ms", "prompt_tokens_per_s"}
        assert report[side]["tokens_per_s"] > 0
        assert 0 < report[side]["tokens"] <= 8
    assert isinstance(report["ratio"], float) and report["ratio"] > 0  # measured, not asserted
    usage = json.loads(RUNNER.invoke(app, ["llm", "usage", "--json"]).stdout)
    assert report["cached_prompt"]["first_token_ms"] > 0  # the same system prompt again
    # the stable prefix loaded from the prompt cache into an empty context
    assert report["saved_prefix"]["source"] == "disk"
    assert report["saved_prefix"]["prefix_tokens"] > 0
    # MAGRAY's side only: one timed run, a warm call, the cached-prompt call, then one call
    # that saves the prefix and one that loads it
    assert sum(r["calls"] for r in usage if r["provider"] == "local") == 5
    bad = RUNNER.invoke(app, ["bench", "llm", "--runs", "0", "--json"])
    assert bad.exit_code == 2


def test_chat_continue_resumes_the_last_conversation(home: Path) -> None:
    nothing = RUNNER.invoke(app, ["chat", "-c", "--no-tools"], input="hi\n")
    assert nothing.exit_code == 3 and "no earlier conversation" in nothing.stderr
    first = RUNNER.invoke(app, ["chat", "--no-tools"], input="What is two plus two?\n")
    assert first.exit_code == 0, first.output
    again = RUNNER.invoke(app, ["chat", "-c", "--no-tools"], input="And three plus three?\n")
    assert again.exit_code == 0, again.output
    logs = json.loads(RUNNER.invoke(app, ["logs", "-n", "2", "--json"]).stdout)
    assert logs[0]["conversation_id"] == logs[1]["conversation_id"]
    assert f"resuming conversation {logs[0]['conversation_id']}" in again.stderr


def test_chat_piped_bytes_that_are_not_utf8_are_one_line(home: Path) -> None:
    done = RUNNER.invoke(app, ["chat", "--no-tools"], input=b"/help\n\xff\xfe\x81\n")
    assert done.exit_code == 2, done.output
    assert done.stderr.strip() == (
        "error: line 2 of standard input is not UTF-8 text; convert it first (for example"
        " with `iconv -t UTF-8`)."
    )
    assert "Slash commands" in done.stdout  # the good line before it was answered
