"""Flags of the LLM commands: `--model` with the embedded local provider (it runs one model,
so another name is refused rather than ignored and reported as the one that answered), and
`llm usage --days` bounds."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_errors_cli import fails, run


def test_ask_with_a_model_the_local_provider_does_not_run() -> None:
    # refused from the configuration, before any model is installed or loaded
    result = run(["ask", "say hi", "--model", "nope", "--no-memory", "--json"])
    line = fails(result, 2, "provider 'local' runs its own model (qwen2.5-coder-0.5b)")
    assert "'nope'" in line and "leave the model out" in line and "magray llm list" in line
    assert "did you mean" not in line and "loading" not in result.stderr


def test_ask_with_a_near_miss_model_says_which_one_it_runs() -> None:
    line = fails(run(["ask", "say hi", "--model", "qwen2.5-coder-0.5"]), 2)
    assert "(did you mean qwen2.5-coder-0.5b?)" in line


def test_ask_with_a_model_another_provider_runs_names_that_provider(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(
        '[llm.providers.big]\ntype = "local"\nmodel = "qwen2.5-coder-1.5b"\n', encoding="utf-8"
    )
    line = fails(run(["ask", "say hi", "--model", "qwen2.5-coder-1.5b"]), 2)
    assert "ask with --provider big, which runs it" in line


def test_ask_and_chat_with_an_empty_or_wrong_model() -> None:
    fails(run(["ask", "say hi", "--model", ""]), 2, "the model name is empty", "magray llm list")
    fails(run(["chat", "--model", "nope"], input=""), 2, "runs its own model", "'nope'")


def test_llm_usage_over_a_century_is_a_usage_error() -> None:
    result = run(["llm", "usage", "--days", "100000000", "--json"])
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "--days" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_provider_name_is_refused_not_taken_as_the_default() -> None:
    for args in (
        ["ask", "say hi", "--provider", "", "--no-memory"],
        ["ask", "say hi", "--provider", "  ", "--no-memory"],
        ["run", "say hi", "--provider", ""],
        ["llm", "test", ""],
        ["bench", "llm", "--provider", ""],
    ):
        fails(run(args), 2, "the provider name is empty", "magray llm list")
