"""Flags of the LLM commands: `--model` with the embedded local provider (it runs one model,
so another name is refused rather than ignored and reported as the one that answered), and
`llm usage --days` bounds."""

from __future__ import annotations

from tests.cli.test_errors_cli import run


def test_ask_with_a_model_the_local_provider_does_not_run() -> None:
    result = run(["ask", "say hi", "--model", "nope", "--no-memory", "--json"])
    assert result.exit_code == 2 and result.stdout == "", result.output
    line = result.stderr.rstrip("\n").splitlines()[-1]  # after the model's loading note
    assert line.startswith("error: provider 'local' runs its own model (qwen2.5-coder-0.5b)")
    assert "'nope'" in line and "leave the model out" in line and "Traceback" not in result.stderr


def test_llm_usage_over_a_century_is_a_usage_error() -> None:
    result = run(["llm", "usage", "--days", "100000000", "--json"])
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "--days" in result.stderr and "Traceback" not in result.stderr


def test_an_empty_provider_name_is_refused_not_taken_as_the_default() -> None:
    from tests.cli.test_errors_cli import fails

    for args in (
        ["ask", "say hi", "--provider", "", "--no-memory"],
        ["ask", "say hi", "--provider", "  ", "--no-memory"],
        ["run", "say hi", "--provider", ""],
        ["llm", "test", ""],
        ["bench", "llm", "--provider", ""],
    ):
        fails(run(args), 2, "the provider name is empty", "magray llm list")
