"""Help texts read like a CLI's, not like Python: value names, whole summaries."""

from __future__ import annotations

from typer.testing import CliRunner

from magray.cli.main import app

RUNNER = CliRunner()


def help_of(*args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_no_python_types_in_help() -> None:
    for args in (("memory", "add"), ("memory", "search"), ("tasks", "add"), ("ingest",)):
        text = help_of(*args)
        for python in ("<str>", "<list[str]>", "<int", "<float>", "{text}", "{title}"):
            assert python not in text, (args, python)
    assert "--tag TAG" in help_of("memory", "add")
    assert "-k N" in help_of("memory", "search")
    assert "Usage: root tasks add [OPTIONS] TITLE" in help_of("tasks", "add")


def test_group_summaries_are_not_cut() -> None:
    for group in ((), ("memory",), ("bench",), ("tasks",)):
        listing = help_of(*group).split("Commands:", 1)[1]
        assert "..." not in listing, group
    bench = help_of("bench")
    for name in ("memory", "retrieval", "embed", "llm", "agent"):
        assert f"\n  {name} " in bench
