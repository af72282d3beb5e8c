"""Vectors at rest once (``backends.sqlite.vector_backlog``): the store drops its copy of a
vector once a saved index file holds it; kill -9 around that step, lost files, readers."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from magray.config import load_settings
from magray.memory.maintenance import verify
from magray.memory.records import NewRecord, Query, SearchMode
from magray.memory.service import Memory
from magray.memory.transfer.jsonl import export, import_
from tests.fakes import HashEmbedder

REPO = Path(__file__).resolve().parents[2]
N = 400  # past the fold threshold
DIM = 256


def make(dtype: str = "f16", warnings: list[str] | None = None) -> Memory:
    settings = load_settings({"memory.vector_dtype": dtype}).with_overrides(
        {"memory.auto_lifecycle": False}, source="test"
    )
    return Memory(
        settings, embedder=HashEmbedder(DIM), warn=None if warnings is None else warnings.append
    )


def word(n: int) -> str:
    return chr(97 + n // 26) + chr(97 + n % 26)


def texts(n: int = N) -> list[str]:
    """Distinct bags of words (the hash embedder reads letters only)."""
    return [f"note {word(i % 30)}x {word(i // 30)}y about tea" for i in range(n)]


def db_rows(home: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(home / "data" / "memory.db") as conn:
        return list(conn.execute(sql))


def check_intact(home: Path, dtype: str, ids: list[str]) -> None:
    """Every acknowledged record is there with the vector its text embeds to, searchable."""
    warnings: list[str] = []
    with make(dtype, warnings) as memory:
        rows = {r.record.id: r for r in memory.backend.iter_records()}
        assert set(ids) <= set(rows)
        nums = [rows[i].num for i in ids]
        stored = memory.backend.vectors(nums)
        want = HashEmbedder(DIM).embed_documents([rows[i].record.text for i in ids])
        for num, vec in zip(nums, want, strict=True):
            got = np.frombuffer(stored[num][1], dtype="<f4")
            assert np.allclose(got, vec, atol=1e-3)
        hit = memory.recall(Query(text=texts()[123], k=1, mode=SearchMode.VECTOR))
        assert hit and hit[0].record.text == texts()[123]
        assert verify(memory).ok
        memory.sync_indexes()
    assert warnings == []
    assert db_rows(home, "SELECT COUNT(*) FROM vector_backlog") == [(0,)]


KILLED_IN_A_FOLD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    from magray.config import load_settings
    from magray.memory.backends.sqlite import index_file, index_sync, vector_backlog
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    settings = load_settings({{"memory.vector_dtype": {dtype!r}}}).with_overrides(
        {{"memory.auto_lifecycle": False}}, source="test"
    )
    memory = Memory(settings, embedder=HashEmbedder({dim}))
    texts = {texts!r}
    memory.remember_many([NewRecord(text=t) for t in texts[:100]])
    memory.sync_indexes()  # a first file; the store dropped those vectors
    for result in memory.remember_many([NewRecord(text=t) for t in texts[100:]]):
        print(result.id)
    print("acknowledged", flush=True)
    where = {where!r}
    if where == "before the rename":
        real = os.replace
        def replace(src, dst):
            if str(src).endswith(".saving"):
                die()
            real(src, dst)
        index_file.os.replace = replace
    elif where == "before the store drops its copies":
        index_sync.IndexSet._clear_backlog = die
    elif where == "after the store dropped its copies":
        vector_backlog.give_back = die
    memory.sync_indexes()
    print("not killed", flush=True)
    """
)


@pytest.mark.parametrize("dtype", ["f16", "f32"])
@pytest.mark.parametrize(
    "where",
    [
        "before the rename",
        "before the store drops its copies",
        "after the store dropped its copies",
    ],
)
def test_kill_9_around_a_fold_loses_no_vector(magray_home: Path, where: str, dtype: str) -> None:
    script = KILLED_IN_A_FOLD.format(
        repo=str(REPO), texts=texts(), where=where, dtype=dtype, dim=DIM
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == -9, done.stderr
    lines = done.stdout.split()
    assert lines[-1] == "acknowledged"
    ids = lines[:-1]
    assert len(ids) == N - 100
    backlog = db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog")[0][0]
    # the new vectors are still the store's until the file holding them is saved (those the
    # index keeps exactly: every f16 one, most f32 ones; the rest stay in their rows)
    apart = db_rows(magray_home, "SELECT COUNT(*) FROM records WHERE vector = x'' AND num > 100")
    assert apart[0][0] > (N - 100) // 2
    assert backlog == (0 if where == "after the store dropped its copies" else apart[0][0])
    check_intact(magray_home, dtype, ids)


def test_a_lost_index_file_is_embedded_again_with_a_warning(magray_home: Path) -> None:
    with make() as memory:
        memory.remember_many([NewRecord(text=t) for t in texts()])
        memory.sync_indexes()
        path = memory.backend.indexes.path()  # type: ignore[attr-defined]
    assert db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog") == [(0,)]
    path.write_bytes(b"\0" * 64)  # damaged: the vectors only it held are gone
    warnings: list[str] = []
    with make("f16", warnings) as memory:
        hit = memory.recall(Query(text=texts()[7], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == texts()[7]
        assert verify(memory).ok
    assert len(warnings) == 2 and "unusable" in warnings[0]
    assert warnings[1] == (
        f"{N} record(s) kept their vector only in the vector index, which is missing or"
        " damaged; embedding their text again."
    )
    check_intact(magray_home, "f16", [])


def test_a_reader_sees_what_another_writer_folded_away(magray_home: Path) -> None:
    with make() as reader, make() as writer:
        writer.remember(NewRecord(text="the first note"))
        writer.sync_indexes()
        assert reader.recall(Query(text="the first note", k=1, mode=SearchMode.VECTOR))
        writer.remember_many([NewRecord(text=t) for t in texts()])
        writer.sync_indexes()  # a newer file; the store dropped the vectors it holds
        assert db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog") == [(0,)]
        hits = reader.recall(Query(text=texts()[321], k=1, mode=SearchMode.VECTOR))
        assert hits[0].record.text == texts()[321]


@pytest.mark.parametrize("dtype", ["f16", "f32"])
def test_export_import_export_is_exact_once_the_store_dropped_its_copies(
    magray_home: Path, tmp_path: Path, dtype: str
) -> None:
    from magray.bench.memory import with_home

    dumps: list[str] = []
    with make(dtype) as memory:
        memory.remember_many([NewRecord(text=t) for t in texts()])
        first = io.StringIO()
        export(memory, first, with_vectors=True)  # from the store's copies
        stats = memory.backend.layer_stats()
        memory.sync_indexes()
        assert memory.backend.layer_stats() == stats  # a vector counts the same where it is
        assert db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog") == [(0,)]
        again = io.StringIO()
        export(memory, again, with_vectors=True)  # from the index file
        assert again.getvalue() == first.getvalue()
        dumps.append(again.getvalue())
    settings = load_settings({"memory.vector_dtype": dtype})
    for name in ("second", "third"):
        with Memory(with_home(settings, tmp_path / name), embedder=HashEmbedder(DIM)) as target:
            assert import_(target, io.StringIO(dumps[-1])).imported == N
            target.sync_indexes()
            out = io.StringIO()
            export(target, out, with_vectors=True)
            dumps.append(out.getvalue())
    assert dumps[0] == dumps[1] == dumps[2]


def test_changing_the_index_dtype_takes_the_vectors_from_the_older_file(
    magray_home: Path,
) -> None:
    with make("f32") as memory:
        memory.remember_many([NewRecord(text=t) for t in texts()])
        memory.sync_indexes()
    warnings: list[str] = []
    with make("f16", warnings) as memory:  # a new f16 file, built from the f32 one
        hit = memory.recall(Query(text=texts()[9], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == texts()[9]
    assert warnings == []


def test_moves_and_edits_of_records_the_file_holds(magray_home: Path) -> None:
    from magray.memory.records import Filters, Layer

    with make() as memory:
        ids = [r.id for r in memory.remember_many([NewRecord(text=t) for t in texts()])]
        memory.sync_indexes()
        memory.move(ids[5], Layer.ASSETS)  # the vector stays in the file, under the old layer
        memory.edit(ids[6], "a brand new text about volcanoes")  # a new vector: kept again
        assert db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog") == [(1,)]
        for _ in range(2):  # from the backlog, then from the folded file
            moved = memory.recall(
                Query(
                    text=texts()[5],
                    k=1,
                    mode=SearchMode.VECTOR,
                    filters=Filters(layers=(Layer.ASSETS,)),
                )
            )
            assert moved[0].record.id == ids[5]
            edited = memory.recall(Query(text="volcanoes new brand", k=1, mode=SearchMode.VECTOR))
            assert edited[0].record.id == ids[6]
            assert verify(memory).ok
            memory.sync_indexes()
        assert db_rows(magray_home, "SELECT COUNT(*) FROM vector_backlog") == [(0,)]
        want = HashEmbedder(DIM).embed_documents(["a brand new text about volcanoes"])[0]
        num = memory.backend.resolve(ids[6]).num
        got = np.frombuffer(memory.backend.vectors([num])[num][1], dtype="<f4")
        assert np.allclose(got, want, atol=1e-3)
