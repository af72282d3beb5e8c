"""Bad input probed through the memory commands: one error line, a non-zero exit, nothing lost.

Commands run with the hashing embedder (no model to load); the kill -9 of a backup is a real
process stopped at a known point, not after a delay.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.memory.records import NewRecord
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    import magray.cli.context as context
    import magray.cli.ingest as ingest
    import magray.cli.memory as memory
    import magray.cli.memory_data as memory_data

    def open_memory(
        *, reading: bool = False, searching: bool = False, **overrides: object
    ) -> Memory:
        return Memory(context.settings(**overrides), embedder=HashEmbedder())

    for module in (context, memory, memory_data, ingest):
        monkeypatch.setattr(module, "open_memory", open_memory)
    return CliRunner()


def invoke(runner: CliRunner, args: list[str], **env: str) -> Result:
    result = runner.invoke(app, args, env=env or None)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def fails(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    line = result.stderr.rstrip("\n")
    assert "\n" not in line and line.startswith("error: ") and line.endswith("."), line
    for needle in needles:
        assert needle in line, line
    return line


def seed(n: int = 3) -> None:
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        memory.remember_many([NewRecord(text=f"fact number {i}") for i in range(n)])


def count() -> int:
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        return memory.backend.count()


@pytest.mark.parametrize(
    ("args", "code", "needles"),
    [
        (["memory", "search", "x", "-k", "99999"], 2, ["-k", "at most 10,000"]),
        (["memory", "search", "x", "-k", "99999999999999999999"], 2, ["-k", "out of range"]),
        (["memory", "list", "--limit", "9223372036854775808"], 2, ["limit", "out of range"]),
        (["memory", "list", "--offset", "-1"], 2, ["--offset must be at least 0"]),
        (["memory", "list", "--limit", "0"], 2, ["--limit must be at least 1"]),
        (["memory", "add", "x", "--kind", " "], 2, ["kind is empty", "such as note"]),
        (["memory", "add", "caf\udce9"], 2, ["TEXT is not valid UTF-8", "terminal's encoding"]),
        (["memory", "add", "ok", "--tag", "\udcff"], 2, ["--tag is not valid UTF-8"]),
        (["memory", "add", "x" * 1_000_001], 2, ["1,000,001 characters", "magray ingest"]),
        (["memory", "search", "x", "--project", "\udcff"], 2, ["--project"]),
        (["memory", "get", "ab\udcffcd"], 2, ["ID is not valid UTF-8"]),
        (
            ["memory", "search", "x", "--tag", "infra, db"],
            2,
            ["a tag never holds a comma (got 'infra, db')", "(--tag infra --tag db)"],
        ),
        # a control character in a label: refused by the memory's one rule (it was stored)
        (["memory", "add", "x", "--kind", "a\x01"], 2, ["the kind 'a\\x01'", "(U+0001)"]),
        (["memory", "add", "x", "--tag", "ok", "--tag", "\x1b[2J"], 2, ["the tag '\\x1b[2J'"]),
        (["memory", "add", "x", "--project", "p\n"], 2, ["the project 'p\\n'", "(U+000A)"]),
        (["memory", "add", "x", "--session", "s\u0085"], 2, ["the session 's\\x85'"]),
        (["memory", "search", "x", "--kind", "a\x07"], 2, ["the kind to filter by", "(U+0007)"]),
        (["memory", "search", "x", "--tag", "a\x7f"], 2, ["the tag to filter by", "(U+007F)"]),
        (["memory", "search", "x", "--project", "a\tb"], 2, ["the project to filter by"]),
        (["memory", "search", "x", "--session", "a\x1b"], 2, ["the session to filter by"]),
        (["memory", "list", "--project", "a\x01"], 2, ["the project to filter by 'a\\x01'"]),
        # a bidi or zero-width character in a label: it would look like another label
        (["memory", "add", "x", "--tag", "ops\u202e"], 2, ["the tag 'ops\\u202e'", "(U+202E"]),
        (["memory", "add", "x", "--kind", "no\u200bte"], 2, ["the kind", "(U+200B", "remove"]),
        (["memory", "add", "x", "--project", "\ufeffp"], 2, ["the project", "(U+FEFF"]),
        (["memory", "add", "x", "--session", "s\u2066"], 2, ["the session", "(U+2066"]),
        (["memory", "search", "x", "--tag", "a\u200f"], 2, ["the tag to filter by", "(U+200F"]),
        (
            ["auth", "create-key", "--role", "reader", "--tenant", "acme\u202e"],
            2,
            ["'acme\\u202e'", "U+202E"],
        ),
        (["config", "set", "search.rrf_k", "nan"], 1, ["search.rrf_k", "finite"]),
        (["config", "set", "search.rrf_k", "inf"], 1, ["search.rrf_k", "finite"]),
        (["config", "set", "search.vector_weight", "1e999"], 1, ["finite"]),
        (["config", "set", "search.rrf_k", "1e9"], 1, ["search.rrf_k", "≤"]),
    ],
)
def test_bad_values_are_one_line(
    runner: CliRunner, args: list[str], code: int, needles: list[str]
) -> None:
    seed()
    fails(invoke(runner, args), code, *needles)
    assert count() == 3


def test_ingest_refuses_a_project_with_a_control_character(
    runner: CliRunner, tmp_path: Path
) -> None:
    seed()
    (tmp_path / "notes.md").write_text("# Notes\n\nSome text.\n", "utf-8")
    args = ["ingest", str(tmp_path / "notes.md"), "--project", "p\x1b[1m"]
    fails(invoke(runner, args), 2, "the project 'p\\x1b[1m' holds a control character")
    assert count() == 3


def test_infinite_setting_from_the_environment(runner: CliRunner) -> None:
    fails(
        invoke(runner, ["memory", "list"], MAGRAY_SEARCH_RRF_K="inf"),
        1,
        "MAGRAY_SEARCH_RRF_K",
        "finite",
    )


def test_real_process_argv_that_is_not_utf8(magray_home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    done = subprocess.run(
        [sys.executable, "-m", "magray", "memory", "add", b"\xff\xfe note"],
        env=env,
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().startswith("error: TEXT is not valid UTF-8")
    assert b"Traceback" not in done.stderr


def test_poisoned_rows_do_not_break_list_or_search(runner: CliRunner, magray_home: Path) -> None:
    seed()
    db = sqlite3.connect(magray_home / "data" / "memory.db")
    with db:
        db.execute("UPDATE records SET created_at = 1e300 WHERE text = 'fact number 0'")
        db.execute("UPDATE records SET created_at = -1e15 WHERE text = 'fact number 1'")
    db.close()
    listed = invoke(runner, ["memory", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    dates = [r["created_at"] for r in json.loads(listed.stdout)["records"]]
    assert len(dates) == 3 and dates.count(None) == 2
    found = invoke(runner, ["memory", "search", "fact number", "--json"])
    assert found.exit_code == 0 and len(json.loads(found.stdout)["hits"]) == 3


def test_import_refuses_out_of_range_fields_and_keeps_the_store(
    runner: CliRunner, tmp_path: Path
) -> None:
    seed()
    for value in ("1e300", "-1e15"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(f'{{"text": "x", "layer": "assets", "created_at": {value}}}\n')
        fails(invoke(runner, ["memory", "import", str(bad)]), 1, "line 1: created_at")
    assert count() == 3
    listed = invoke(runner, ["memory", "list", "--json"])
    assert listed.exit_code == 0


def test_huge_and_deeply_nested_lines(runner: CliRunner, tmp_path: Path) -> None:
    huge = tmp_path / "huge.jsonl"
    with huge.open("w") as fh:
        fh.write('{"text": "' + "word " * 10_000_000 + '", "layer": "assets"}\n')
        fh.write('{"text": "kept", "layer": "assets"}\n')
    done = invoke(runner, ["memory", "import", str(huge), "--skip-bad", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["imported"] == 1 and report["skipped_bad"][0]["line"] == 1
    assert "longer than" in report["skipped_bad"][0]["error"]
    nested = tmp_path / "nested.jsonl"
    nested.write_text("[" * 100_000 + "\n")
    fails(invoke(runner, ["memory", "import", str(nested)]), 1, "nested too deeply")


def test_export_to_a_folder_or_into_a_missing_one(runner: CliRunner, tmp_path: Path) -> None:
    seed()
    folder = tmp_path / "out"
    folder.mkdir()
    fails(invoke(runner, ["memory", "export", str(folder)]), 2, "is a folder", "memories.jsonl")
    fails(invoke(runner, ["memory", "export", str(tmp_path / "nope" / "x.jsonl")]), 3, "nope")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["magray-home", "out"]
    assert list(folder.iterdir()) == []
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (folder / f".m.jsonl.{int(dead.stdout)}.tmp").write_text("left by a killed export")
    good = invoke(runner, ["memory", "export", str(folder / "m.jsonl")])
    assert good.exit_code == 0 and [p.name for p in folder.iterdir()] == ["m.jsonl"]


def test_export_never_overwrites_the_homes_own_files(
    runner: CliRunner, magray_home: Path, tmp_path: Path
) -> None:
    """`memory export <home>/data/memory.db` wrote JSON over the store it was reading."""
    seed()
    paths = load_settings().paths
    (magray_home / "config.toml").write_text("[memory]\n", encoding="utf-8")
    for target in (paths.memory_db, paths.index_dir / "x.jsonl", magray_home / "config.toml"):
        before = target.read_bytes() if target.exists() else None
        fails(invoke(runner, ["memory", "export", str(target)]), 2, "MAGRAY's own files")
        assert (target.read_bytes() if target.exists() else None) == before
    assert count() == 3
    for fine in (magray_home / "memories.jsonl", paths.data_dir / "backups" / "m.jsonl"):
        fine.parent.mkdir(exist_ok=True)
        assert invoke(runner, ["memory", "export", str(fine)]).exit_code == 0
        assert fine.read_text(encoding="utf-8").count("\n") == 4


def test_export_into_a_fifo_writes_through_it_and_leaves_it_a_fifo(
    runner: CliRunner, tmp_path: Path
) -> None:
    import stat
    import threading

    seed()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    try:
        result = invoke(runner, ["memory", "export", str(fifo)])
    finally:
        if reader.is_alive():  # the pipe was never opened for writing: release the reader
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join()
    assert result.exit_code == 0, result.output
    assert json.loads(received[0].splitlines()[0])["magray_export"] == 1
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # written into, not replaced by a rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["magray-home", "pipe"]


def test_import_reads_a_pipe_like_a_file(runner: CliRunner, tmp_path: Path) -> None:
    import threading

    seed()
    exported = invoke(runner, ["memory", "export"]).stdout
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(exported))
    writer.start()
    try:
        result = invoke(runner, ["memory", "import", str(fifo), "--json"])
    finally:
        if writer.is_alive():  # the pipe was never opened: release the writer
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        writer.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["duplicates"] == 3


def test_restore_of_a_deeply_nested_manifest(runner: CliRunner, tmp_path: Path) -> None:
    backup = tmp_path / "bk"
    backup.mkdir()
    (backup / "manifest.json").write_text("[" * 100_000)
    fails(invoke(runner, ["memory", "restore", str(backup)]), 1, "manifest.json is damaged")


BACKUP_THEN_HANG = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from magray.config import load_settings
    from magray.memory.transfer import backup
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    def hang(work, dest):
        print(work, flush=True)
        time.sleep(3600)

    backup._install_dir = hang
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        backup.backup(memory, Path({dest!r}))
    """
)


def test_killed_backup_leaves_no_work_folder_behind(runner: CliRunner, tmp_path: Path) -> None:
    seed()
    dest = tmp_path / "bk"
    script = BACKUP_THEN_HANG.format(repo=str(REPO), dest=str(dest))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    ) as proc:
        assert proc.stdout is not None
        work = Path(proc.stdout.readline().strip())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert work.is_dir() and work.parent == tmp_path and work.name.startswith(".bk.")
    done = invoke(runner, ["memory", "backup", str(dest), "--json"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bk", "magray-home"]
    assert json.loads(done.stdout)["counts"]["interact"] == 3


def test_ingest_survives_a_bad_gitignore_and_a_late_nul_byte(
    runner: CliRunner, tmp_path: Path
) -> None:
    root = tmp_path / "proj"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / ".gitignore").write_text("\\\n*.log\n")
    (root / "sub" / "notes.md").write_text("# Notes\n\nPenguins.\n")
    (root / "sub" / "x.log").write_text("ignored\n")
    (root / "data.txt").write_bytes(b"text " * 2000 + b"\x00tail")
    done = invoke(runner, ["ingest", str(root)])
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("files: 1 added")
    assert f"{root / 'sub' / '.gitignore'} line 1" in done.stderr
    assert "skipped data.txt: binary" in done.stderr or f"{root / 'data.txt'}" in done.stderr


def test_import_of_a_folder_says_it_is_a_folder(runner: CliRunner, tmp_path: Path) -> None:
    fails(invoke(runner, ["memory", "import", str(tmp_path)]), 2, "is a folder", "memory export")
