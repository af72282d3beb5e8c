"""kill -9 during a restore (``backends.sqlite.backup``): before its commit point the old
store is left untouched; after it, the next open finishes the restore, with every vector.

The stores keep float16 vectors once at rest, so most vectors live only in the index file:
a restored database that went without the backup's index file (or the old database that met
it) would lose them or answer with the wrong records.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from magray.memory.maintenance import verify
from magray.memory.records import NewRecord, Query, SearchMode
from magray.memory.transfer.backup import backup
from tests.memory.test_vector_backlog import REPO, make, texts

OLD = texts(360)[:300]  # the store the backup is taken of
NEW = texts(360)[300:]  # what the live store holds when it is restored over

KILLED_IN_A_RESTORE = textwrap.dedent(
    """
    import os, shutil, signal, sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from magray.config import load_settings
    from magray.memory.backends.sqlite import backup as sqlite_backup
    from magray.memory.transfer.backup import restore

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    where = {where!r}
    real_replace, real_rmtree = os.replace, shutil.rmtree
    moved = []

    def replace(src, dst):
        dst = Path(dst)
        if dst.name.endswith(".restoring") and where == "before the commit":
            die()
        real_replace(src, dst)
        moved.append(dst)
        if dst.name.endswith(".restoring") and where == "after the commit":
            die()
        if dst.name == "memory.db" and where == "after the database moved":
            die()
        if dst.parent.name == "index" and where == "after an index file moved":
            die()

    def rmtree(path, *args, **kwargs):
        if Path(path).name.endswith(".restoring") and where == "before the cleanup":
            die()
        real_rmtree(path, *args, **kwargs)

    sqlite_backup.os.replace = replace
    sqlite_backup.shutil.rmtree = rmtree
    restore(load_settings({{"memory.vector_dtype": "f16"}}), Path({backup!r}), force=True)
    print("not killed", flush=True)
    """
)


def fill(lines: list[str]) -> None:
    with make("f16") as memory:
        memory.remember_many([NewRecord(text=t) for t in lines])
        memory.sync_indexes()


def check_holds(lines: list[str], absent: list[str]) -> None:
    """The store holds exactly ``lines``, each found by its own vector, nothing embedded
    again."""
    warnings: list[str] = []
    with make("f16", warnings) as memory:
        held = sorted(row.record.text for row in memory.backend.iter_records())
        assert held == sorted(lines)
        for text in lines[::17] + absent[::17]:
            hit = memory.recall(Query(text=text, k=1, mode=SearchMode.VECTOR))
            assert hit and (hit[0].record.text == text) == (text in lines)
        assert verify(memory).ok
    assert warnings == []


@pytest.mark.parametrize(
    "where",
    [
        "before the commit",
        "after the commit",
        "after the database moved",
        "after an index file moved",
        "before the cleanup",
    ],
)
def test_kill_9_during_a_restore_leaves_the_old_store_or_finishes_the_new(
    magray_home: Path, tmp_path: Path, where: str
) -> None:
    fill(OLD)
    with make("f16") as memory:
        backup(memory, tmp_path / "bk")
        for row in list(memory.backend.iter_records()):
            memory.forget(row.record.id)
    fill(NEW)
    with closing(sqlite3.connect(magray_home / "data" / "memory.db")) as conn:
        apart = conn.execute("SELECT COUNT(*) FROM records WHERE vector = x''").fetchone()[0]
    assert apart == len(NEW)  # each vector is only in the index file
    script = KILLED_IN_A_RESTORE.format(repo=str(REPO), where=where, backup=str(tmp_path / "bk"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == -9, done.stderr + done.stdout
    data = magray_home / "data"
    pending = data / "memory.db.restoring"
    if where == "before the commit":
        assert not pending.exists()
        check_holds(NEW, OLD)
    else:
        check_holds(OLD, NEW)
        assert not pending.exists()


def test_a_restore_finishes_one_a_crash_cut_short_first(magray_home: Path, tmp_path: Path) -> None:
    fill(OLD)
    with make("f16") as memory:
        backup(memory, tmp_path / "bk")
    script = KILLED_IN_A_RESTORE.format(
        repo=str(REPO), where="after the database moved", backup=str(tmp_path / "bk")
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert done.returncode == -9
    from magray.config import load_settings
    from magray.memory.transfer.backup import restore

    restore(load_settings({"memory.vector_dtype": "f16"}), tmp_path / "bk", force=True)
    assert not (magray_home / "data" / "memory.db.restoring").exists()
    check_holds(OLD, NEW)
