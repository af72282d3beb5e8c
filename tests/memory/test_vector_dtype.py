"""``memory.vector_dtype = auto``: a new store gets f16, an existing store keeps its type."""

from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from magray.config import load_settings
from magray.memory.maintenance import verify
from magray.memory.records import NewRecord, Query, SearchMode
from magray.memory.service import Memory
from magray.memory.transfer.jsonl import export
from magray.memory.vector_dtype import file_dtype, peek, resolve_dtype
from tests.fakes import HashEmbedder

TEXTS = [f"note {i} about the staging database on port {5400 + i}" for i in range(40)]


def make(warnings: list[str] | None = None, **overrides: object) -> Memory:
    settings = load_settings({"memory.auto_lifecycle": False, **overrides})
    warn = warnings.append if warnings is not None else None
    return Memory(settings, embedder=HashEmbedder(), warn=warn)


def db_of(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "data" / "memory.db", isolation_level=None)


def index_files(home: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each index file's inode, mtime and bytes: any rebuild or save changes them."""
    folder = home / "data" / "index"
    return {
        p.name: (os.stat(p).st_ino, os.stat(p).st_mtime_ns, p.read_bytes())
        for p in sorted(folder.iterdir())
    }


def fill(memory: Memory, texts: list[str] = TEXTS) -> None:
    memory.remember_many([NewRecord(text=t) for t in texts])
    memory.sync_indexes()


def dump(memory: Memory) -> dict[str, str]:
    """Each record's exported vector (base64 of float32), by id."""
    out = io.StringIO()
    export(memory, out, with_vectors=True)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return {r["id"]: r["vector"] for r in rows if "vector" in r}


def forget_recorded_dtype(home: Path) -> None:
    """Make the store look as a MAGRAY before ``auto`` left it: no recorded type."""
    with db_of(home) as db:
        db.execute("DELETE FROM meta WHERE key = 'vector_dtype'")


def test_the_default_is_auto_and_a_new_store_gets_f16(magray_home: Path) -> None:
    assert load_settings().memory.vector_dtype == "auto"
    with make() as memory:
        assert memory.backend.vector_dtype == "f16"
        memory.remember(NewRecord(text="the staging database listens on port 5433"))
        db = db_of(magray_home)  # recorded with the first vector
        assert db.execute("SELECT value FROM meta WHERE key = 'vector_dtype'").fetchone() == (
            "f16",
        )
        fill(memory)
        memory.remember(NewRecord(text="one more note"))  # waits as float16 + tag
        assert [r[0] for r in db.execute("SELECT LENGTH(vector) FROM vector_backlog")] == [129]
        hit = memory.recall(Query(text="database port 5433", k=1, mode=SearchMode.VECTOR))
        assert "5433" in hit[0].record.text and verify(memory).ok
        db.close()
    assert sorted(index_files(magray_home)) == [
        "vectors.hash-64.f16.usearch",
        "vectors.hash-64.f16.usearch.json",
    ]


def test_a_store_made_under_the_old_f32_default_keeps_f32_without_a_rebuild(
    magray_home: Path,
) -> None:
    with make(**{"memory.vector_dtype": "f32"}) as memory:
        fill(memory)
        before = dump(memory)
    forget_recorded_dtype(magray_home)
    files = index_files(magray_home)
    assert sorted(files) == ["vectors.hash-64.f32.usearch", "vectors.hash-64.f32.usearch.json"]
    warnings: list[str] = []
    with make(warnings) as memory:  # auto: the store's files say f32
        assert memory.backend.vector_dtype == "f32"
        hit = memory.recall(Query(text=TEXTS[7], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == TEXTS[7]
        assert verify(memory).ok and dump(memory) == before
        assert index_files(magray_home) == files  # not rebuilt, no f16 file beside it
        memory.remember(NewRecord(text="one more note"))  # f32 again, now recorded
        db = db_of(magray_home)
        assert db.execute("SELECT value FROM meta WHERE key = 'vector_dtype'").fetchone() == (
            "f32",
        )
        assert [r[0] for r in db.execute("SELECT LENGTH(vector) FROM vector_backlog")] == [256]
        db.close()
    assert warnings == []


def test_a_store_with_float32_vectors_in_its_rows_keeps_reading_them(magray_home: Path) -> None:
    """A store written before vectors left the rows, its index file lost: it stays f32, the
    file is rebuilt from the rows, and every vector reads back exactly."""
    with make(**{"memory.vector_dtype": "f32"}) as memory:
        memory.remember_many([NewRecord(text=t) for t in TEXTS])
        before = dump(memory)
    with db_of(magray_home) as db:
        db.execute(
            "UPDATE records SET vector ="
            " (SELECT b.vector FROM vector_backlog b WHERE b.num = records.num)"
        )
        db.execute("DELETE FROM vector_backlog")
        db.execute("DELETE FROM meta WHERE key = 'vector_dtype'")
        assert {r[0] for r in db.execute("SELECT LENGTH(vector) FROM records")} == {256}
    for path in (magray_home / "data" / "index").glob("*"):
        path.unlink()
    with make() as memory:
        assert memory.backend.vector_dtype == "f32"
        hit = memory.recall(Query(text=TEXTS[3], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == TEXTS[3]
        assert dump(memory) == before and verify(memory).ok
    assert sorted(index_files(magray_home))[0] == "vectors.hash-64.f32.usearch"


@pytest.mark.parametrize("dtype", ["f32", "f16", "i8"])
def test_an_explicit_type_wins_and_the_store_keeps_it_under_auto(
    magray_home: Path, dtype: str
) -> None:
    with make(**{"memory.vector_dtype": dtype}) as memory:
        assert memory.backend.vector_dtype == dtype
        fill(memory)
    files = index_files(magray_home)
    assert sorted(files)[0] == f"vectors.hash-64.{dtype}.usearch"
    with make() as memory:
        assert memory.backend.vector_dtype == dtype
        hit = memory.recall(Query(text=TEXTS[5], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == TEXTS[5]
    assert index_files(magray_home) == files


def test_changing_an_explicit_type_rebuilds_and_auto_then_keeps_the_new_one(
    magray_home: Path,
) -> None:
    with make() as memory:
        fill(memory)
        before = dump(memory)
    with make(**{"memory.vector_dtype": "f32"}) as memory:  # as before auto: a rebuild
        assert memory.backend.vector_dtype == "f32"
        hit = memory.recall(Query(text=TEXTS[9], k=1, mode=SearchMode.VECTOR))
        assert hit[0].record.text == TEXTS[9]
        memory.remember(NewRecord(text="written under f32"))
        memory.sync_indexes()
    names = sorted(index_files(magray_home))
    assert "vectors.hash-64.f32.usearch" in names and "vectors.hash-64.f16.usearch" in names
    with make() as memory:
        assert memory.backend.vector_dtype == "f32"  # the type its last writes used
        memory.forget(memory.recall(Query(text="written under f32", k=1))[0].record.id)
        after = dump(memory)
    assert sorted(after) == sorted(before)
    for rid, vector in before.items():  # the f32 file holds them scaled to unit length again
        was, now = (np.frombuffer(base64.b64decode(v), "<f4") for v in (vector, after[rid]))
        assert np.allclose(was, now, atol=1e-3)


def test_a_store_without_a_recorded_type_follows_its_newest_index_file(tmp_path: Path) -> None:
    folder = tmp_path / "index"
    folder.mkdir()
    assert file_dtype(folder, "org/model") is None

    def put(name: str, seq: int) -> None:
        (folder / name).write_bytes(b"x")
        (folder / f"{name}.json").write_text(json.dumps({"applied_seq": seq}))

    put("vectors.org_model.f16.usearch", 40)
    put("vectors.org_model.f32.usearch", 41)  # reflects a later write
    put("vectors.other.i8.usearch", 99)  # another model's
    assert file_dtype(folder, "org/model") == "f32"
    put("vectors.org_model.i8.usearch", 42)
    assert file_dtype(folder, "org/model") == "i8"
    meta = {"embedding_model": "org/model"}
    assert resolve_dtype("auto", meta.get, folder) == "i8"
    assert resolve_dtype("f16", meta.get, folder) == "f16"
    assert resolve_dtype("auto", {**meta, "vector_dtype": "f16"}.get, folder) == "f16"
    assert resolve_dtype("auto", {}.get, folder) == "f16"  # never held a vector: new
    assert resolve_dtype("auto", meta.get, tmp_path / "none") == "f32"  # files lost
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "insights.org_model.f16.usearch").write_bytes(b"x")  # per-layer, no sidecar
    assert file_dtype(legacy, "org/model") == "f16"


def test_peek_reads_the_store_without_opening_it(magray_home: Path, tmp_path: Path) -> None:
    data = magray_home / "data"
    assert peek(data / "memory.db", data / "index", "auto") == "f16"  # no store yet
    assert not (data / "memory.db").exists()
    with make(**{"memory.vector_dtype": "i8"}) as memory:
        memory.remember(NewRecord(text="a note"))
    assert peek(data / "memory.db", data / "index", "auto") == "i8"
    assert peek(data / "memory.db", data / "index", "f32") == "f32"
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert peek(empty, tmp_path, "auto") == "f16"
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"not a database" * 100)
    assert peek(bad, tmp_path, "auto") is None


def test_vectors_of_a_new_store_are_float16_at_rest(magray_home: Path) -> None:
    with make() as memory:
        fill(memory, TEXTS[:1])
        memory.remember_many([NewRecord(text=t) for t in TEXTS[1:4]])
        blobs = [r[0] for r in db_of(magray_home).execute("SELECT vector FROM vector_backlog")]
        back = memory.backend.vectors([2])[2][1]
    assert len(blobs) == 3 and all(len(b) == 2 * 64 + 1 for b in blobs)
    assert np.allclose(np.frombuffer(back, "<f4"), np.frombuffer(blobs[0][:-1], "<f2"))
