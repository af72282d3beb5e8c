"""A really full disk: MAGRAY's home on a small tmpfs that bubblewrap mounts.

Writes fail with one clear line and a non-zero exit, nothing stored before is lost (also
when the disk fills in the middle of an ingest), reads still answer where SQLite can read,
and once space is freed every command works again and the ingest completes. The commands
run as real processes inside ``bwrap --tmpfs`` with a size limit, so the kernel itself
answers ``ENOSPC``: no write is faked. bwrap is one of the project's system packages
(``scripts/system-deps.sh``); on Linux its absence is a failure, as in the sandbox tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.cli.test_errors_cli import _env

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="bubblewrap is Linux only")

TMPFS_BYTES = 8 * 1024 * 1024
FILES = 60  # documents of the ingest that meets a full disk
LEFT = 64 * 1024  # bytes left free before that ingest: it opens the store, cannot finish

# Runs inside the tmpfs's mount namespace: each step a real ``magray`` process.
DRIVER = r"""
import json, os, subprocess, sys
from pathlib import Path

tiny, docs, env = Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
filler = tiny / "filler"
report = {}

def magray(step, *args):
    done = subprocess.run([sys.executable, "-m", "magray", *args], env=env,
                          capture_output=True, text=True, timeout=600)
    report[step] = {"rc": done.returncode, "out": done.stdout, "err": done.stderr}

def fill(leave):
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))

magray("add_1", "memory", "add", "the staging database listens on port 5433", "--json")
magray("add_2", "memory", "add", "the production database listens on port 5432", "--json")
fill(0)
magray("add_full", "memory", "add", "a memory that does not fit", "--json")
magray("ingest_full", "ingest", docs, "--project", "docs")
magray("list_full", "memory", "list", "--json")
filler.unlink()
magray("list_freed", "memory", "list", "--json")
fill(int(sys.argv[4]))
magray("ingest_mid", "ingest", docs, "--project", "docs")
filler.unlink()
magray("verify", "memory", "verify", "--json")
magray("list_after", "memory", "list", "--json")
magray("ingest_again", "ingest", docs, "--project", "docs", "--json")
magray("search", "memory", "search", "staging database port", "-k", "1", "--json")
magray("stats", "memory", "stats", "--json")
print(json.dumps(report))
"""


def _one_clear_line(step: dict[str, Any]) -> str:
    assert step["rc"] != 0, step
    assert step["out"] == "", step
    lines = [line for line in step["err"].splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, step["err"]
    assert "Traceback" not in step["err"], step["err"]
    return lines[0]


def _texts(step: dict[str, Any]) -> set[str]:
    assert step["rc"] == 0, step
    return {row["text"] for row in json.loads(step["out"])["records"]}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap (bwrap) is missing: install it with scripts/system-deps.sh"
    usage = subprocess.run([bwrap, "--help"], capture_output=True, text=True, check=False)
    if "--size" not in usage.stdout + usage.stderr:
        pytest.skip("this bubblewrap cannot size a tmpfs (--size came with 0.8.0)")
    root = tmp_path_factory.mktemp("disk-full")
    tiny = root / "tiny"
    tiny.mkdir()
    docs = root / "docs"
    docs.mkdir()
    for i in range(FILES):
        words = " ".join(f"topic{i}-word{j}" for j in range(60))  # one chunk a file
        (docs / f"note-{i:02d}.md").write_text(f"# Note {i}\n\nNote {i} is about {words}.\n")
    env = _env(tiny / "home")
    mount = ["--dev-bind", "/", "/", "--size", str(TMPFS_BYTES), "--tmpfs", str(tiny)]
    driver = [sys.executable, "-c", DRIVER, str(tiny), str(docs), json.dumps(env), str(LEFT)]
    done = subprocess.run(
        [bwrap, *mount, "--die-with-parent", *driver],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_writes_on_a_full_disk_fail_with_one_clear_line(report: dict[str, Any]) -> None:
    assert report["add_1"]["rc"] == 0 and report["add_2"]["rc"] == 0, report
    for step in ("add_full", "ingest_full"):
        line = _one_clear_line(report[step])
        assert "full" in line and "free space" in line, line
    # reading needs SQLite's shared-memory file, which a full disk may refuse: either the
    # records, or the same one line
    listed = report["list_full"]
    assert listed["rc"] == 0 or "free space" in _one_clear_line(listed), listed


def test_a_full_disk_loses_nothing(report: dict[str, Any]) -> None:
    before = {
        "the staging database listens on port 5433",
        "the production database listens on port 5432",
    }
    assert _texts(report["list_freed"]) == before
    # the ingest that met the full disk in its middle: every record before it is there,
    # and the store checks clean
    assert _one_clear_line(report["ingest_mid"])
    assert before <= _texts(report["list_after"])
    assert report["verify"]["rc"] == 0, report["verify"]
    assert json.loads(report["verify"]["out"])["ok"] is True


def test_once_space_is_freed_everything_works_again(report: dict[str, Any]) -> None:
    assert report["ingest_again"]["rc"] == 0, report["ingest_again"]
    stats = json.loads(report["stats"]["out"])
    assert sum(layer["records"] for layer in stats["layers"].values()) == 2 + FILES
    hits = json.loads(report["search"]["out"])["hits"]
    assert hits[0]["text"] == "the staging database listens on port 5433"
