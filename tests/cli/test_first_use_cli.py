"""A new user's first commands, wrong on purpose: one clear sentence, the right exit code,
and nothing echoed that should not be (found by trying the CLI in a fresh home)."""

from __future__ import annotations

from pathlib import Path

from magray.config import load_settings
from tests.cli.test_errors_cli import fails, run


def test_export_to_an_empty_path_is_not_the_current_folder() -> None:
    fails(run(["memory", "export", ""]), 2, "PATH is an empty path", "'-' for standard output")


def test_home_backup_where_nothing_can_be_written_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    line = fails(run(["backup", str(tmp_path / "a-file" / "bk")]), 1, "writing the backup to")
    assert "home-tmp" not in line and "Errno" not in line  # no temporary names, no errno
    assert line.endswith("give a new or empty folder in a place you can write to, with free space.")


def test_an_empty_default_provider_is_refused_not_read_as_local() -> None:
    for value in ("", "  "):
        fails(run(["config", "set", "llm.default", value]), 1, "llm.default is empty", "unset")
    assert load_settings().paths.config_file.exists() is False  # nothing was written


def test_a_key_on_the_command_line_is_refused_without_repeating_it() -> None:
    line = fails(run(["keys", "set", "openai", "sk-very-secret"]), 2, "takes only NAME")
    assert "sk-very-secret" not in line and "hidden prompt or standard input" in line


def test_an_argument_to_a_command_that_takes_none_says_so() -> None:
    fails(
        run(["auth", "create-key", "bob", "--role", "reader"]),
        2,
        "auth create-key` takes no arguments, only options (got bob)",
        "its options",
    )
    fails(run(["memory", "get", "abcd", ""]), 2, "unexpected extra arguments ('')")


def test_revoking_an_empty_key_id_is_a_usage_error() -> None:
    fails(run(["auth", "revoke-key", " "]), 2, "the key id is empty", "magray auth list-keys")


def test_a_tool_path_left_empty_is_not_the_workspace_root() -> None:
    fails(
        run(["tools", "run", "file_read", "--arg", "path="]),
        2,
        "file_read: invalid arguments (path: the path is empty); it takes path (required)",
    )
    fails(
        run(["tools", "run", "file_delete", "--arg", "path= ", "--yes"]),
        2,
        "file_delete: invalid arguments (path: the path is empty)",
    )


def test_a_list_argument_given_as_text_shows_the_json_it_takes() -> None:
    fails(
        run(["tools", "run", "shell_exec", "--yes", "--arg", "argv=ls"]),
        2,
        'argv: Input should be a list, in JSON: ["a", "b"]',
        "it takes argv (required)",
    )
