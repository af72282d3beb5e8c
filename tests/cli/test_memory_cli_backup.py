"""`magray memory backup|restore|export|import` through the CLI, plus kill -9 crash safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.memory.maintenance import verify
from magray.memory.records import NewRecord
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """CLI runs use the hashing embedder instead of loading a real model."""
    import magray.cli.context as context

    def open_memory(
        *, reading: bool = False, searching: bool = False, **overrides: object
    ) -> Memory:
        return Memory(context.settings(**overrides), embedder=HashEmbedder())

    monkeypatch.setattr(context, "open_memory", open_memory)
    import magray.cli.memory_data as memory_data

    monkeypatch.setattr(memory_data, "open_memory", open_memory)
    return CliRunner()


def seed(n: int = 3) -> list[str]:
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        results = memory.remember_many([NewRecord(text=f"fact number {i}") for i in range(n)])
    return [r.id for r in results]


def test_backup_then_restore_with_json(runner: CliRunner, tmp_path: Path) -> None:
    seed()
    result = runner.invoke(app, ["memory", "backup", str(tmp_path / "bk"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"]["interact"] == 3
    refused = runner.invoke(app, ["memory", "restore", str(tmp_path / "bk")])
    assert refused.exit_code == 1 and "--force" in refused.stderr
    done = runner.invoke(app, ["memory", "restore", str(tmp_path / "bk"), "--force", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["restored"] == 3
    missing = runner.invoke(app, ["memory", "restore", str(tmp_path / "nope")])
    assert missing.exit_code == 3


def test_backup_where_nothing_can_be_written_says_what_to_do(
    runner: CliRunner, tmp_path: Path
) -> None:
    seed(1)
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    targets = [tmp_path / "a-file" / "bk"]
    if Path("/proc/self").is_dir():
        targets.append(Path("/proc/magray-backup"))  # a folder no one can create files in
    for target in targets:
        result = runner.invoke(app, ["memory", "backup", str(target)])
        assert result.exit_code == 1 and result.stdout == "", result.output
        line = result.stderr.strip()
        assert "\n" not in line and "Traceback" not in line and "unexpected" not in line, line
        assert line.startswith(f"error: cannot write a backup to {target} (")
        assert line.endswith("give a new or empty directory in a folder you can write to.")


def test_backup_to_an_empty_path_is_one_clear_sentence(runner: CliRunner) -> None:
    result = runner.invoke(app, ["memory", "backup", ""])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (
        "error: PATH is an empty path; give a file or folder ('.' for the current one), or"
        " leave it out for the default.\n"
    )


def test_export_to_stdout_and_import_from_stdin(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = seed()
    exported = runner.invoke(app, ["memory", "export", "--vectors"])
    assert exported.exit_code == 0, exported.output
    lines = exported.stdout.splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["magray_export"] == 1
    monkeypatch.setenv("MAGRAY_HOME", str(tmp_path / "other"))
    imported = runner.invoke(app, ["memory", "import", "-", "--json"], input=exported.stdout)
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout) == {
        "imported": 3,
        "duplicates": 0,
        "embedded": 0,
        "skipped_bad": [],
    }
    listed = runner.invoke(app, ["memory", "list", "--json"])
    assert sorted(r["id"] for r in json.loads(listed.stdout)["records"]) == sorted(ids)


def test_export_to_file_and_import_bad_lines(runner: CliRunner, tmp_path: Path) -> None:
    seed()
    out = tmp_path / "mem.jsonl"
    assert runner.invoke(app, ["memory", "export", str(out), "--layer", "interact"]).exit_code == 0
    lines = out.read_text().splitlines()
    lines[2] = "garbage"
    out.write_text("\n".join(lines) + "\n")
    bad = runner.invoke(app, ["memory", "import", str(out)])
    assert bad.exit_code == 1 and "line 3" in bad.stderr
    ok = runner.invoke(app, ["memory", "import", str(out), "--skip-bad", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["duplicates"] == 2 and data["skipped_bad"][0]["line"] == 3
    assert runner.invoke(app, ["memory", "import", str(tmp_path / "none")]).exit_code == 3
    assert runner.invoke(app, ["memory", "export", "--layer", "attic"]).exit_code == 2


@pytest.mark.parametrize("command", ["backup", "restore", "export", "import"])
def test_help_has_an_example(runner: CliRunner, command: str) -> None:
    result = runner.invoke(app, ["memory", command, "--help"])
    assert result.exit_code == 0 and f"magray memory {command}" in result.stdout


WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {repo!r})
    from magray.config import load_settings
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    memory = Memory(load_settings(), embedder=HashEmbedder())
    i = 0
    while True:
        batch = [NewRecord(text=f"crash test record {{i}} {{j}}") for j in range(20)]
        results = memory.remember_many(batch)
        if i % 3 == 0:
            memory.sync_indexes()
        print(" ".join(r.id for r in results), flush=True)
        i += 1
    """
)


def test_kill_9_mid_write_loses_no_committed_record() -> None:
    committed: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", WRITER.format(repo=str(REPO))],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])},
    ) as proc:
        assert proc.stdout is not None
        for _ in range(15):
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            committed.extend(line.split())
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        committed.extend(proc.stdout.read().split())
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        stored = {row.record.id for row in memory.backend.iter_records()}
        assert set(committed) <= stored
        report = verify(memory)
        assert report.ok, report.problems
