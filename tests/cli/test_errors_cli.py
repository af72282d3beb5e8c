"""Bad input at the CLI: one clear `error:` line on stderr, the documented exit code, no traceback.

Exit codes: 1 user error, 2 usage, 3 not found, 4 denied, 5 network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from tests.conftest import REPO, TEST_MODELS_DIR

RUNNER = CliRunner()


def run(args: Sequence[str], input: str | bytes | None = None, **env: str) -> Result:
    result = RUNNER.invoke(app, list(args), input=input, env=env or None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # an unexpected exception is a bug, whatever the input
    return result


def fails(result: Result, code: int, *needles: str) -> str:
    """The run failed with ``code`` and exactly one ``error:`` line naming ``needles``."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    line = result.stderr.rstrip("\n")
    assert "\n" not in line, result.stderr
    assert line.startswith("error: ") and line.endswith("."), line
    assert "Traceback" not in line
    for needle in needles:
        assert needle in line, line
    return line


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["memory", "add", ""], 2, ["empty"]),
        (["memory", "add", "   \n"], 2, ["empty"]),
        (["memory", "add", "x", "--importance", "2"], 2, ["importance", "between 0 and 1"]),
        (["memory", "add", "x", "--importance", "-0.1"], 2, ["importance"]),
        (["memory", "add", "x", "--layer", "bogus"], 2, ["'bogus'", "interact, insights, assets"]),
        (["memory", "search", "x", "--layer", "bogus"], 2, ["'bogus'"]),
        (["memory", "list", "--layer", "bogus"], 2, ["'bogus'"]),
        (["memory", "search", "x", "--mode", "foo"], 2, ["--mode", "hybrid, vector, keyword"]),
        (["memory", "search", "x", "-k", "0"], 2, ["-k", "at least 1"]),
        (["memory", "search", ""], 2, ["empty"]),
        (["memory", "search", "x", "--created-after", "yesterday"], 2, ["--created-after", "ISO"]),
        (["memory", "search", "x", "--created-before", "2026-13-45"], 2, ["--created-before"]),
        (["memory", "list", "--limit", "0"], 2, ["limit"]),
        (["memory", "get", "zzzzzzzzzzzzzzzz"], 3, ["no memory", "magray memory list"]),
        (["memory", "forget", "zzzzzzzzzzzzzzzz"], 3, ["no memory"]),
        (["memory", "get", "ab"], 2, ["at least 4 characters"]),
        (["ingest", "/nonexistent/magray/path"], 3, ["/nonexistent/magray/path"]),
        (["config", "set", "nosuch.key", "1"], 1, ["unknown setting", "magray config show"]),
        (["config", "set", "embed.batch_size", "abc"], 1, ["embed.batch_size", "whole number"]),
        (["config", "set", "search.mode", "foo"], 1, ["search.mode", "hybrid"]),
    ],
)
def test_bad_input_is_one_line_with_its_exit_code(
    args: list[str], code: int, needles: list[str]
) -> None:
    fails(run(args), code, *needles)


def test_stdin_that_is_not_text_or_empty() -> None:
    fails(run(["memory", "add", "-"], input=b"\xff\xfe\x00\x81binary"), 2, "not UTF-8")
    fails(run(["memory", "add", "-"], input=b""), 2, "empty")
    fails(run(["memory", "search", "-"], input=b"\xc3\x28"), 2, "not UTF-8")


def test_ambiguous_id_prefix(tmp_path: Path) -> None:
    header = {"magray_export": 1}
    lines = [header] + [
        {"id": f"abcd{n}000000000000", "text": f"note {n}", "layer": "interact"} for n in (1, 2)
    ]
    dump = tmp_path / "two.jsonl"
    dump.write_text("".join(json.dumps(x) + "\n" for x in lines))
    imported = run(["memory", "import", str(dump), "--json"])
    assert imported.exit_code == 0, imported.output
    line = fails(run(["memory", "get", "abcd"]), 2, "ambiguous", "abcd1", "abcd2")
    assert "give more of it" in line
    assert run(["memory", "get", "abcd2"]).exit_code == 0


def test_corrupt_config_toml(magray_home: Path) -> None:
    config = magray_home / "config.toml"
    config.write_text("[search\nmode =")
    for args in (
        ["memory", "list"],
        ["config", "show"],
        ["config", "set", "search.mode", "vector"],
    ):
        fails(run(args), 1, str(config), "not valid TOML", "fix or remove")
    config.write_text('[search]\nmode = "bogus"\n')
    fails(run(["memory", "list"]), 1, str(config), "search.mode", "'bogus'")
    config.write_text("[search]\nnope = 1\n")
    fails(run(["config", "show"]), 1, "unknown setting 'search.nope'")


def test_bad_environment_value() -> None:
    fails(run(["memory", "list"], MAGRAY_SEARCH_MODE="foo"), 1, "MAGRAY_SEARCH_MODE", "'foo'")
    fails(
        run(["config", "show"], MAGRAY_EMBED_BATCH_SIZE="lots"),
        1,
        "MAGRAY_EMBED_BATCH_SIZE",
        "whole number",
    )
    fails(run(["memory", "list"], MAGRAY_MEMORY_VECTOR_DTYPE="f8"), 1, "f32, f16, i8")


def test_missing_model_names_the_install_command(tmp_path: Path) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    # The default model is built on first use; one that must be downloaded is named.
    result = run(
        ["memory", "add", "hello"], MAGRAY_MODELS_DIR=str(empty), MAGRAY_EMBED_MODEL="bge-m3"
    )
    line = fails(result, 1, "not installed")
    assert "magray models install bge-m3" in line


def test_click_usage_errors_exit_2() -> None:
    for args in (
        ["memory", "serch", "x"],
        ["memory", "add", "x", "--importance", "abc"],
        ["memory", "search"],
        ["config", "set", "search.mode"],
    ):
        result = run(args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stdout == "" and "Traceback" not in result.stderr


def test_config_set_then_show() -> None:
    done = run(["config", "set", "search.mode", "keyword"])
    assert done.exit_code == 0 and done.stdout == ""
    assert "search.mode = 'keyword'" in done.stderr
    shown = json.loads(run(["config", "show", "--json"]).stdout)
    row = next(r for r in shown["settings"] if r["key"] == "search.mode")
    assert row["value"] == "keyword" and row["source"] != "default"


# -- real processes ------------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}  # not debug mode
    env.update(MAGRAY_HOME=str(home), MAGRAY_MODELS_DIR=str(TEST_MODELS_DIR), **extra)
    return env


def test_a_reader_that_goes_away_ends_every_command_the_same_way(magray_home: Path) -> None:
    """`magray config show | head -1` exited 1 (rich's console) where `tasks list | head -1`
    exited 0 (typer.echo): both are 0 now, and nothing is printed about it."""
    for args in (["config", "show"], ["models", "list"], ["policy", "show"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before magray writes anything
        try:
            done = subprocess.run(
                [sys.executable, "-m", "magray", *args],
                stdout=write,
                stderr=subprocess.PIPE,
                env=_env(magray_home),
                cwd=REPO,
                timeout=120,
                check=False,
            )
        finally:
            os.close(write)
        assert done.returncode == 0, (args, done.stderr)
        assert b"Traceback" not in done.stderr and b"Exception ignored" not in done.stderr


def _magray(
    args: Sequence[str], home: Path, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "magray", *args],
        input=stdin,
        env=_env(home),
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_help_does_not_import_heavy_modules(magray_home: Path) -> None:
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['magray', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('magray', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "heavy = {'numpy', 'onnxruntime', 'usearch', 'tokenizers', 'sqlite3'} & set(sys.modules)\n"
        "print(sorted(heavy), file=sys.stderr)\n"
    )
    for args in (["--help"], ["memory", "--help"], ["memory", "search", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args],
            env=_env(magray_home),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "Usage: magray" in done.stdout
        assert done.stderr.strip().splitlines()[-1] == "[]", (args, done.stderr)


def test_real_process_errors_have_no_traceback(magray_home: Path) -> None:
    missing = _magray(["memory", "get", "zzzzzzzzzzzzzzzz"], magray_home)
    assert missing.returncode == 3 and missing.stdout == ""
    assert (
        missing.stderr.startswith("error: no memory with id") and "Traceback" not in missing.stderr
    )
    binary = _magray(["memory", "add", "-"], magray_home, stdin=b"\xff\xfe\x81")
    assert (
        binary.returncode == 2
        and binary.stderr.strip()
        == "error: standard input is not UTF-8 text (byte 0xff at offset 0); convert it first"
        " (for example with `iconv -t UTF-8`)."
    )
    (magray_home / "config.toml").write_text("not = [valid")
    broken = _magray(["memory", "stats", "--json"], magray_home)
    assert broken.returncode == 1 and len(broken.stderr.strip().splitlines()) == 1
    assert "Traceback" not in broken.stderr


def test_real_process_add_then_search_json(magray_home: Path) -> None:
    added = _magray(
        ["memory", "add", "-", "--json"], magray_home, stdin=b"the cache lives in redis"
    )
    assert added.returncode == 0, added.stderr
    record_id = json.loads(added.stdout)["id"]
    found = _magray(["memory", "search", "where is the cache", "--json"], magray_home)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["id"] == record_id
    assert "Traceback" not in found.stderr


def test_config_set_of_a_model_that_does_not_exist_changes_nothing(magray_home: Path) -> None:
    fails(run(["config", "set", "embed.model", "nope"]), 1, "unknown model 'nope'")
    fails(run(["config", "set", "search.reranker", "all-minilm-l6-v2"]), 1, "not a reranker")
    fails(run(["config", "set", "embed.model", "bge-reranker-v2-m3"]), 1, "not an embedder")
    assert not (magray_home / "config.toml").exists()
    assert run(["config", "set", "embed.model", "default-int8"]).exit_code == 0


def test_postgres_backend_without_a_dsn_is_refused_before_anything_is_written(
    magray_home: Path,
) -> None:
    config = magray_home / "config.toml"
    fails(run(["config", "set", "memory.backend", "postgres"]), 1, "set memory.dsn postgresql://")
    assert not config.exists()
    dsn = "postgresql://ann@db.invalid/magray"
    assert (
        run(["config", "set", "memory.backend", "postgres"], MAGRAY_MEMORY_DSN=dsn).exit_code == 0
    )
    assert run(["config", "set", "memory.dsn", dsn]).exit_code == 0
    written = config.read_text()
    fails(run(["config", "set", "memory.dsn", " "]), 1, "memory.dsn cannot be emptied")
    fails(run(["config", "unset", "memory.dsn"]), 1, "config set memory.backend sqlite")
    assert config.read_text() == written
    assert run(["config", "unset", "memory.dsn"], MAGRAY_MEMORY_DSN=dsn).exit_code == 0


def test_postgres_backend_from_the_environment_without_a_dsn_fails_at_first_use() -> None:
    for command in (["memory", "list"], ["serve", "--port", "1"]):
        fails(run(command, MAGRAY_MEMORY_BACKEND="postgres"), 1, "memory.dsn is empty")


def test_config_set_of_tools_roots_names_a_missing_folder(
    magray_home: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    fails(run(["config", "set", "tools.roots", f"{a},{b}"]), 1, f"separated by {os.pathsep!r}")
    fails(run(["config", "set", "tools.roots", str(tmp_path / "nope")]), 1, "is not a folder")
    assert not (magray_home / "config.toml").exists()
    assert run(["config", "set", "tools.roots", f"{a}{os.pathsep}{b}"]).exit_code == 0


def test_config_set_of_a_model_not_installed_warns_and_keeps_the_setting(
    magray_home: Path,
) -> None:
    uninstalled = run(["config", "set", "search.reranker", "bge-reranker-v2-m3"])
    assert uninstalled.exit_code == 0 and "warning" not in uninstalled.stderr  # rerank is off
    on = run(["config", "set", "search.rerank", "true"])
    assert on.exit_code == 0
    assert "bge-reranker-v2-m3 is not installed yet" in on.stderr
    assert "`magray models install bge-reranker-v2-m3`" in on.stderr
    model = run(["config", "set", "embed.model", "bge-m3"])
    assert (
        model.exit_code == 0 and "bge-m3 is not installed yet, so memory commands" in model.stderr
    )
    assert "bge-m3" in (magray_home / "config.toml").read_text()


def test_an_unexpected_error_says_where_its_traceback_is(magray_home: Path) -> None:
    from magray.cli.app import unexpected_line

    line = unexpected_line(RuntimeError("boom"))
    log = magray_home / "logs" / "magray.log"
    assert line == f"unexpected RuntimeError: boom. Full traceback in {log}."
    assert "RuntimeError: boom" in log.read_text()


def test_an_unexpected_error_without_a_log_says_how_to_see_it(magray_home: Path) -> None:
    # the log folder cannot be made (a file stands there): the line still says what to do
    from magray.cli.app import unexpected_line

    (magray_home / "logs").write_text("not a folder")
    line = unexpected_line(RuntimeError("boom"))
    assert line == (
        "unexpected RuntimeError: boom; the log could not be written: run again with"
        " MAGRAY_DEBUG=1 to see the traceback."
    )


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("embed.batch_size", "abc", "whole number"),
        ("search.mode", "bogus", "must be one of"),
        ("tools.roots", "/no/such/folder", "is not a folder"),
        ("embed.model", "nope", "unknown model 'nope'"),
    ],
)
def test_config_set_refuses_every_invalid_value_as_a_config_error(
    magray_home: Path, key: str, value: str, needle: str
) -> None:
    """One rule for every key: a value `config set` refuses is a config error (exit 1)."""
    fails(run(["config", "set", key, value]), 1, needle)
    assert not (magray_home / "config.toml").exists()
