"""Damaged derived files are rebuilt, not fatal: the store is the source of truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_errors_cli import _magray, fails, run


def test_a_damaged_embedding_cache_is_set_aside_and_rebuilt(magray_home: Path) -> None:
    # real processes: an embedder (and its cache) loaded once stays loaded in a process
    first = _magray(["memory", "add", "the cache is a derived file", "--json"], magray_home)
    assert first.returncode == 0, first.stderr
    cache = magray_home / "data" / "embed-cache.db"
    assert cache.is_file()
    cache.write_bytes(b"this is not a SQLite database at all" * 100)

    added = _magray(["memory", "add", "written after the damage", "--json"], magray_home)

    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["created"] is True
    assert added.stderr.startswith("warning: the embedding cache")
    assert "rebuilt" in added.stderr and "Traceback" not in added.stderr
    aside = magray_home / "data" / "embed-cache.db.damaged"
    assert aside.read_bytes().startswith(b"this is not a SQLite database")
    found = _magray(["memory", "search", "written after the damage", "--json"], magray_home)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["text"] == "written after the damage"
    assert found.stderr == ""


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("config.toml", ["memory", "list"]),
        ("policy.toml", ["policy", "show"]),
        ("mcp.toml", ["mcp", "list"]),
        ("keys.toml", ["keys", "list"]),
    ],
)
def test_a_settings_file_that_is_a_folder(name: str, args: list[str], magray_home: Path) -> None:
    (magray_home / name).mkdir()
    fails(run(args), 1, name, "cannot be read", "remove it")


def test_a_settings_file_that_cannot_be_written(magray_home: Path) -> None:
    # the temporary file `config set` writes first cannot be created (as on a read-only or
    # full disk): one line naming the file, and config.toml is untouched
    from magray.fileio import temporary_of

    config = magray_home / "config.toml"
    config.write_text('[search]\nmode = "vector"\n')
    temporary_of(config).mkdir()
    fails(run(["config", "set", "search.mode", "keyword"]), 1, "config.toml", "cannot write")
    temporary_of(magray_home / "policy.toml").mkdir()
    fails(run(["policy", "allow", "file_read"]), 1, "policy.toml", "cannot write")
    assert config.read_text() == '[search]\nmode = "vector"\n'


def test_a_memory_store_that_cannot_be_opened(magray_home: Path) -> None:
    (magray_home / "data" / "memory.db").mkdir(parents=True)
    for args in (["memory", "list"], ["memory", "add", "x"]):
        fails(run(args), 1, "memory.db", "cannot be opened", "writable")


@pytest.mark.parametrize(
    "args",
    [
        ["memory", "add", "x"],
        ["memory", "backup"],
        ["ingest", "README.md"],
        ["tasks", "add", "t"],
        ["logs"],
        ["auth", "list-keys"],
        ["llm", "usage"],
    ],
)
def test_a_data_folder_that_is_a_file(args: list[str], magray_home: Path) -> None:
    # a file where the home's data folder belongs: one line saying what to move, never
    # an unexpected FileExistsError
    (magray_home / "data").write_text("not a folder")
    fails(run(args), 1, str(magray_home / "data"), "not a folder", "move it aside")


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("tasks.db", ["tasks", "list"]),
        ("conversations.db", ["logs"]),
        ("server-keys.db", ["auth", "list-keys"]),
        ("llm.db", ["llm", "usage"]),
    ],
)
def test_a_database_that_cannot_be_opened_says_what_to_check(
    name: str, args: list[str], magray_home: Path
) -> None:
    (magray_home / "data" / name).mkdir(parents=True)
    fails(run(args), 1, name, "writable")


@pytest.mark.parametrize(
    ("name", "args"),
    [("tasks.db", ["tasks", "list"]), ("server-keys.db", ["auth", "list-keys"])],
)
def test_a_damaged_database_says_to_restore(name: str, args: list[str], magray_home: Path) -> None:
    (magray_home / "data").mkdir()
    (magray_home / "data" / name).write_bytes(b"not a database" * 500)
    fails(run(args), 1, name, "damaged", "magray restore")


def test_a_damaged_home_backup_is_refused_with_what_to_do(tmp_path: Path) -> None:
    assert run(["tasks", "add", "keep me"]).exit_code == 0
    backup = tmp_path / "backup"
    assert run(["backup", str(backup)]).exit_code == 0
    tasks = backup / "data" / "tasks.db"
    data = bytearray(tasks.read_bytes())
    data[-1] ^= 0xFF
    tasks.write_bytes(bytes(data))
    fails(run(["restore", str(backup)]), 1, "damaged", "nothing was changed", "another backup")
    (backup / "manifest.json").write_text("{")
    fails(run(["restore", str(backup)]), 1, "not a MAGRAY home backup", "`magray backup` wrote")
