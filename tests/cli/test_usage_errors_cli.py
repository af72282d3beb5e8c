"""Command-line usage errors: one `error:` sentence naming the command and its --help, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from tests.cli.test_errors_cli import fails
from tests.conftest import REPO, TEST_MODELS_DIR


def run(args: list[str]) -> Result:
    result = CliRunner().invoke(app, args, prog_name="magray")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["memory", "search", "x", "--foo"],
            "error: no such option --foo for `magray memory search`; run"
            " `magray memory search --help` for its options.",
        ),
        (
            ["memory", "search", "x", "--lay", "assets"],
            "error: no such option --lay for `magray memory search` (did you mean --layer or"
            " --tag?); run `magray memory search --help` for its options.",
        ),
        (
            ["config", "set", "memory.ttl_interact_hours", "-1"],
            "error: no such option -1 for `magray config set` (a value that starts with '-'"
            " goes after `--`, as in `magray config set ... -- -1`); run `magray config set"
            " --help` for its options.",
        ),
        (
            ["--foo"],
            "error: no such option --foo for `magray`; run `magray --help` for its options.",
        ),
        (
            ["memory", "--foo"],
            "error: no such option --foo for `magray memory`; run `magray memory --help` for"
            " its options.",
        ),
        (
            ["memory", "get"],
            "error: `magray memory get` needs the argument ID; run `magray memory get --help`"
            " for how to call it.",
        ),
        (
            ["memory", "search", "x", "-k", "abc"],
            "error: -k takes a whole number for `magray memory search`; run"
            " `magray memory search --help` for its options.",
        ),
        (
            ["memory", "add", "x", "--importance", "high"],
            "error: --importance takes a number for `magray memory add`; run"
            " `magray memory add --help` for its options.",
        ),
        (
            ["memory", "search", "x", "-k"],
            "error: option -k of `magray memory search` requires an argument; run"
            " `magray memory search --help` for its options.",
        ),
        (
            ["memory", "search", "x", "--json=yes"],
            "error: option --json of `magray memory search` does not take a value; run"
            " `magray memory search --help` for its options.",
        ),
        (
            ["ask", "two", "words"],
            "error: unexpected extra arguments (words) for `magray ask` (quote a value that has"
            " spaces); run `magray ask --help` for how to call it.",
        ),
        (
            ["memory", "serch", "x"],
            "error: no such command 'serch' in `magray memory` (did you mean 'search'?); run"
            " `magray memory --help` for its commands.",
        ),
        (
            ["nosuch"],
            "error: no such command 'nosuch' in `magray`; run `magray --help` for its commands.",
        ),
        (
            ["tasks", "add"],
            "error: `magray tasks add` needs the argument TITLE; run `magray tasks add --help`"
            " for how to call it.",
        ),
    ],
)
def test_usage_error_is_one_sentence(args: list[str], expected: str) -> None:
    line = fails(run(args), 2)
    assert line == expected


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (["tasks", "remove", "1"], "'rm'"),  # a synonym's short name, not 'reopen'
        (["tasks", "delete", "1"], "'rm'"),
        (["memory", "remove", "x"], "'forget'"),
        (["memory", "rm", "x"], "'forget'"),
        (["keys", "rm", "x"], "'remove'"),  # the shorthand of a long name
        (["tasks", "reopn", "1"], "'reopen'"),  # a misspelling
        (["memroy", "list"], "'memory'"),  # the root's commands load lazily
        (["tsks"], "'tasks'"),
    ],
)
def test_a_mistyped_command_suggests_the_likely_one(args: list[str], meant: str) -> None:
    fails(run(args), 2, f"no such command '{args[-2] if len(args) > 2 else args[0]}'")
    assert f"(did you mean {meant}?)" in run(args).stderr


def test_suggestions_prefer_synonyms_then_shorthands_then_spelling() -> None:
    from magray.cli.usage import suggest_commands

    names = ["add", "list", "reopen", "rm", "show"]
    assert suggest_commands("remove", names) == ["rm"]
    assert suggest_commands("Delete", names) == ["rm"]
    assert suggest_commands("lst", names) == ["list"]
    assert suggest_commands("reopne", names) == ["reopen"]
    assert suggest_commands("zzz", names) == []


def test_a_group_without_a_command_still_shows_its_help() -> None:
    shown = run(["memory"])
    assert shown.exit_code == 2
    assert "Usage: magray memory" in shown.output and "Commands" in shown.output


def test_help_is_unchanged_by_the_usage_errors() -> None:
    shown = run(["memory", "search", "--help"])
    assert shown.exit_code == 0 and shown.stderr == ""
    assert shown.stdout.startswith("Usage: magray memory search [OPTIONS]")


def test_real_process_usage_error_is_one_line(magray_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # not debug mode
    env.update(MAGRAY_HOME=str(magray_home), MAGRAY_MODELS_DIR=str(TEST_MODELS_DIR))
    done = subprocess.run(
        [sys.executable, "-m", "magray", "memory", "search", "x", "--foo"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: no such option --foo for `magray memory search`; run"
        " `magray memory search --help` for its options.\n"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["audit", "list", "--limit", "99999999999999999999"],
            "error: --limit 99999999999999999999 is out of range; give a smaller number.",
        ),
        (
            ["memory", "search", "x", "-k", "-99999999999999999999"],
            "error: -k -99999999999999999999 is out of range; give a smaller number.",
        ),
        (
            ["memory", "add", "x", "--importance", "nan"],
            "error: --importance takes a finite number, not nan.",
        ),
        (
            ["memory", "add", "x", "--importance", "-inf"],
            "error: --importance takes a finite number, not -inf.",
        ),
        (
            ["audit", "list", "--limit", "0"],
            "error: --limit must be at least 1 for `magray audit list`; run"
            " `magray audit list --help` for its options.",
        ),
        (
            ["serve", "--port", "70000"],
            "error: --port must be at most 65535 for `magray serve`; run `magray serve --help`"
            " for its options.",
        ),
    ],
)
def test_numbers_no_command_can_use_are_refused(args: list[str], expected: str) -> None:
    assert fails(run(args), 2) == expected


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["tasks", "add", "\udcff"], "TITLE"),
        (["tasks", "edit", "abc", "--notes", "x\udcff"], "--notes"),
        (["memory", "search", "\udcffx"], "QUERY"),
        (["keys", "set", "\udcff"], "NAME"),
        (["policy", "allow", "\udcff"], "TOOL"),
    ],
)
def test_text_that_is_not_utf8_is_refused_for_every_command(args: list[str], name: str) -> None:
    line = fails(run(args), 2)
    assert line == f"error: {name} is not valid UTF-8; check the terminal's encoding."
