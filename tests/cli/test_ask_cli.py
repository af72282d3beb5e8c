"""`magray ask` and `magray logs` through the real embedded Gemma model and the real embedder.

One home is shared by the module (the local model loads once per process and is cached);
each test asks its own question and finds its exchange by conversation id. The local model
runs on one thread (config.toml) so a busy machine does not collapse generation speed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli import render
from magray.cli.ask import TINY_MODEL_NOTE
from magray.cli.main import app
from tests.conftest import TEST_MODELS_DIR

RUNNER = CliRunner()
LOCAL_TOML = '[llm.providers.local]\ntype = "local"\nmodel = "local-tiny"\nthreads = 1\n'
FACT = "The MAGRAY mascot is a purple heron named Quillon who lives in Zurich."
ASK_KEYS = {
    "answer",
    "provider",
    "model",
    "conversation_id",
    "memories",
    "usage",
    "latency_ms",
}
LOG_KEYS = {
    "conversation_id",
    "at",
    "prompt",
    "answer",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "memories",
    "finish_reason",
}


def run(args: Sequence[str], home: Path, input: str | None = None) -> Result:
    """``magray ARGS`` in ``home``; anything but a clean exit is re-raised, not hidden."""
    env = {"MAGRAY_HOME": str(home), "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR)}
    result = RUNNER.invoke(app, list(args), env=env, input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def ok_json(args: Sequence[str], home: Path, input: str | None = None) -> Any:
    result = run([*args, "--json"], home, input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def interact(home: Path) -> list[dict[str, Any]]:
    listed = ok_json(["memory", "list", "--layer", "interact", "--limit", "200"], home)
    return list(listed["records"])


def assert_ask_shape(data: dict[str, Any]) -> None:
    assert set(data) >= ASK_KEYS
    assert isinstance(data["answer"], str) and data["answer"].strip()
    assert data["provider"] == "local" and data["model"]
    assert isinstance(data["conversation_id"], str) and data["conversation_id"]
    for m in data["memories"]:
        assert set(m) >= {"id", "layer", "score"}
        assert m["layer"] in {"interact", "insights", "assets"}
        assert isinstance(m["score"], float)
    assert set(data["usage"]) >= {"prompt_tokens", "completion_tokens"}
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert data["latency_ms"] > 0


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory, local_gguf: Path, default_model_dir: Path
) -> Path:
    path = tmp_path_factory.mktemp("cli-ask") / "home"
    path.mkdir()
    (path / "config.toml").write_text(LOCAL_TOML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fact_id(home: Path) -> str:
    added = ok_json(["memory", "add", FACT, "--layer", "insights"], home)
    return str(added["id"])


@pytest.fixture(scope="module")
def first(home: Path, fact_id: str) -> dict[str, Any]:
    """One grounded answer about the remembered fact."""
    return dict(ok_json(["ask", "What is the name of the MAGRAY mascot?"], home))


def test_ask_json_shape_and_grounding(first: dict[str, Any], fact_id: str) -> None:
    assert_ask_shape(first)
    assert fact_id in [m["id"] for m in first["memories"]]  # recalled into the prompt
    assert first["memories"][0]["id"] == fact_id
    assert set(first["cited"]) <= {m["id"] for m in first["memories"]}


def test_exchange_lands_in_interact(home: Path, first: dict[str, Any]) -> None:
    mine = [r for r in interact(home) if r["session"] == first["conversation_id"]]
    assert len(mine) == 1
    assert mine[0]["kind"] == "exchange"
    assert mine[0]["text"].startswith("Q: What is the name of the MAGRAY mascot?\nA: ")


def test_continue_last_conversation(home: Path, first: dict[str, Any]) -> None:
    again = ok_json(["ask", "Where does it live?", "-c"], home)
    assert again["conversation_id"] == first["conversation_id"]
    by_id = ok_json(["ask", "And its colour?", "--conversation", first["conversation_id"]], home)
    assert by_id["conversation_id"] == first["conversation_id"]
    turns = [
        t
        for t in ok_json(["logs", "-n", "50"], home)
        if t["conversation_id"] == first["conversation_id"]
    ]
    assert [t["prompt"] for t in reversed(turns)] == [
        "What is the name of the MAGRAY mascot?",
        "Where does it live?",
        "And its colour?",
    ]


def test_logs_json_shape(home: Path, first: dict[str, Any]) -> None:
    rows = ok_json(["logs", "-n", "1"], home)
    assert isinstance(rows, list) and len(rows) == 1
    row = rows[0]
    assert set(row) == LOG_KEYS
    assert row["provider"] == "local" and row["answer"]
    assert row["prompt_tokens"] > 0 and row["latency_ms"] > 0
    assert row["at"].endswith("Z") and isinstance(row["memories"], list)
    assert run(["logs", "-n", "0"], home).exit_code == 2


def test_no_memory_neither_recalls_nor_stores(home: Path, fact_id: str) -> None:
    before = len(interact(home))
    data = ok_json(["ask", "Name the MAGRAY mascot.", "--no-memory"], home)
    assert_ask_shape(data)
    assert data["memories"] == []
    assert len(interact(home)) == before
    assert ok_json(["logs", "-n", "1"], home)[0]["conversation_id"] == data["conversation_id"]


def test_streams_to_stdout_and_hints_once(
    home: Path, fact_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "_noted", set())
    done = run(["ask", "Who is Quillon?"], home)
    assert done.exit_code == 0, done.output
    answer = ok_json(["logs", "-n", "1"], home)[0]["answer"]
    # the answer as streamed, and nothing else: a small model's citation is checked before
    # it is shown, so the terminal and the log hold the same text
    assert done.stdout.strip() == answer
    assert not done.stdout[:1].isspace()
    assert done.stderr.count(TINY_MODEL_NOTE) == 1
    assert TINY_MODEL_NOTE not in done.stdout


@pytest.mark.parametrize(
    ("args", "stdin"),
    [(["ask", ""], None), (["ask", "   \n "], None), (["ask", "-"], ""), (["ask", "-"], " \n")],
)
def test_empty_question_is_a_usage_error(home: Path, args: list[str], stdin: str | None) -> None:
    done = run(args, home, stdin)
    assert done.exit_code == 2
    assert "question is empty" in done.stderr and done.stdout == ""


def test_unknown_conversation_and_nothing_to_continue(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(LOCAL_TOML, encoding="utf-8")
    unknown = run(["ask", "hi", "--conversation", "cnope", "--no-memory"], magray_home)
    assert unknown.exit_code == 3 and "cnope" in unknown.stderr
    nothing = run(["ask", "hi", "-c", "--no-memory"], magray_home)
    assert nothing.exit_code == 3 and "no earlier conversation" in nothing.stderr
    both = run(["ask", "hi", "-c", "--conversation", "x"], magray_home)
    assert both.exit_code == 2


def test_unknown_provider_lists_configured(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(
        LOCAL_TOML + '[llm.providers.work]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n',
        encoding="utf-8",
    )
    done = run(["ask", "hi", "--provider", "nope", "--no-memory"], magray_home)
    assert done.exit_code == 2
    assert "'nope'" in done.stderr and "local, work" in done.stderr
    assert done.stdout == ""


def test_context_overflow_leaves_out_memories(
    magray_home: Path, local_gguf: Path, default_model_dir: Path
) -> None:
    (magray_home / "config.toml").write_text(
        '[llm.providers.local]\ntype = "local"\nmodel = "local-tiny"\nthreads = 1\n'
        "n_ctx = 512\nmax_tokens = 32\n",
        encoding="utf-8",
    )
    for i, topic in enumerate(["harbour", "lighthouse", "ferry", "tides"]):
        text = f"Memory {i} about the {topic} of Port Quillon: " + " ".join(
            f"the {topic} detail number {n} is recorded here." for n in range(25)
        )
        ok_json(["memory", "add", text, "--layer", "insights"], magray_home)
    # a small model reads at most 150 tokens of focused evidence: a long question overflows
    question = "Port Quillon harbour ferry " * 20 + "What is recorded about the harbour?"
    data = ok_json(["ask", question], magray_home)
    assert_ask_shape(data)
    assert any("left out" in n and "memories" in n for n in data["notes"]), data["notes"]
    assert data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"] <= 512


def test_streamer_drops_markers_that_cite_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    from magray.cli.ask import streamer

    write = streamer(lambda: 1)
    for chunk in ["  Paris is the capital [", "2]. Lyon [1", "] is not [x] ", "[3]", "."]:
        write(chunk)
    assert capsys.readouterr().out == "Paris is the capital. Lyon [1] is not [x]."
    plain = streamer()
    plain(" keeps [9] as is")
    assert capsys.readouterr().out == "keeps [9] as is"


def test_recall_scope_flags_and_stdin_question(home: Path, fact_id: str) -> None:
    other = ok_json(
        ["memory", "add", "Quillon the heron also visits Geneva.", "--project", "zoo"], home
    )
    data = ok_json(["ask", "--project", "zoo", "-k", "1"], home, "Where does Quillon go?")
    assert [m["id"] for m in data["memories"]] == [other["id"]]
    bad = run(["ask", "hi", "-k", "0"], home)
    assert bad.exit_code == 2 and "-k must be between 1 and 100" in bad.stderr


def test_piped_ask_says_once_that_the_local_model_loads(
    home: Path, fact_id: str, local_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.llm import llama_loader

    monkeypatch.setattr(llama_loader, "_loaded", {})  # as in a fresh process: the model must load
    done = run(["ask", "Where does Quillon live?"], home)
    assert done.exit_code == 0, done.output
    lines = [line for line in done.stderr.splitlines() if line.startswith("magray: ")]
    assert lines == [f"magray: loading the local model {local_gguf.name}…"], done.stderr
    assert "thinking" not in done.stderr  # every call reads its prompt: no line for that
    assert "magray:" not in done.stdout


def test_a_terminal_gets_one_spinner_that_stops_before_the_answer() -> None:
    from magray.cli.render import StatusLine
    from magray.llm import status

    seen: list[str | None] = []
    line = StatusLine(live=True)
    with status.reporting(lambda step: seen.append(step and step.text) or line(step)):
        status.report("loading the local model x.gguf")
        assert line._spinner is not None
        status.report("thinking (reading the prompt)", transient=True)
        status.done()
        assert line._spinner is None  # gone before the first words are written
    assert seen == ["loading the local model x.gguf", "thinking (reading the prompt)", None, None]


def test_a_question_or_task_longer_than_the_api_takes_is_one_line() -> None:
    from tests.cli.test_errors_cli import fails, run

    text = "q" * 200_001
    for command, what in (("ask", "the question"), ("run", "the task")):
        line = fails(run([command, "-"], input=text), 2, f"{what} has 200,001 characters")
        assert "magray ingest" in line
