"""Online backup and verified, all-or-nothing restore on real SQLite stores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import BackupError, NotFoundError
from magray.memory.backends.sqlite.migrations import SCHEMA_VERSION
from magray.memory.records import Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from magray.memory.transfer.backup import MANIFEST, backup, restore
from tests.fakes import HashEmbedder

DOCS = [
    ("The staging database listens on port 5433", Layer.INSIGHTS, ("infra",)),
    ("Deploys run every Tuesday after the standup", Layer.INTERACT, ("process",)),
    ("Use ruff and mypy before every commit", Layer.ASSETS, ("style", "ci")),
    ("Production database backups are taken nightly", Layer.ASSETS, ("infra",)),
]


def make() -> Memory:
    return Memory(load_settings(), embedder=HashEmbedder())


def fill(memory: Memory) -> None:
    memory.remember_many(
        [NewRecord(text=t, layer=layer, tags=tags, project="demo") for t, layer, tags in DOCS]
    )
    memory.sync_indexes()


def snapshot(memory: Memory) -> list[object]:
    return [row.record for row in memory.backend.iter_records()]


def test_backup_is_online_while_another_connection_holds_a_write_transaction(
    tmp_path: Path,
) -> None:
    with make() as memory:
        fill(memory)
        other = sqlite3.connect(memory.backend.store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE records SET text = 'uncommitted' WHERE layer = 'assets'")
        manifest = backup(memory, tmp_path / "bk")
        other.execute("ROLLBACK")
        other.close()
    assert manifest.counts == {"interact": 1, "insights": 1, "assets": 2}
    assert manifest.schema_version == SCHEMA_VERSION
    assert manifest.embedding_model == "hash-64" and manifest.embedding_dim == 64
    data = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    names = {f["path"] for f in data["files"]}
    assert "memory.db" in names and any(n.startswith("index/") for n in names)
    with sqlite3.connect(tmp_path / "bk" / "memory.db") as conn:
        texts = {r[0] for r in conn.execute("SELECT text FROM records")}
    assert "uncommitted" not in texts


def test_default_destination_is_under_data_dir_and_non_backup_dirs_are_refused(
    tmp_path: Path,
) -> None:
    with make() as memory:
        fill(memory)
        manifest = backup(memory)
        assert manifest.path.parent == memory.settings.paths.data_dir / "backups"
        again = backup(memory, manifest.path)  # a previous backup may be overwritten
        assert again.records == len(DOCS)
        junk = tmp_path / "junk"
        junk.mkdir()
        (junk / "notes.txt").write_text("mine")
        with pytest.raises(BackupError, match="not a MAGRAY backup"):
            backup(memory, junk)
    assert (junk / "notes.txt").read_text() == "mine"


def test_restore_round_trips_records_keyword_and_vector_search(tmp_path: Path) -> None:
    with make() as memory:
        fill(memory)
        before = snapshot(memory)
        backup(memory, tmp_path / "bk")
        memory.forget(before[0].id)
        memory.remember(NewRecord(text="added after the backup"))
    restore(load_settings(), tmp_path / "bk", force=True)
    with make() as memory:
        assert snapshot(memory) == before
        for mode in (SearchMode.KEYWORD, SearchMode.VECTOR):
            hits = memory.recall(Query(text="database port", k=1, mode=mode), record_access=False)
            assert "port 5433" in hits[0].record.text
        from magray.memory.maintenance import verify

        assert verify(memory).ok


def test_restore_rebuilds_missing_index_files(tmp_path: Path) -> None:
    with make() as memory:
        fill(memory)
        backup(memory, tmp_path / "bk")
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    for entry in manifest["files"]:
        if entry["path"].startswith("index/"):
            (tmp_path / "bk" / entry["path"]).unlink()
    manifest["files"] = [f for f in manifest["files"] if f["path"] == "memory.db"]
    (tmp_path / "bk" / MANIFEST).write_text(json.dumps(manifest))
    restore(load_settings(), tmp_path / "bk", force=True)
    with make() as memory:
        hits = memory.recall(Query(text="ruff mypy", k=1, mode=SearchMode.VECTOR))
        assert "ruff" in hits[0].record.text


def _tamper(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda bk: _tamper(bk / "memory.db"), "sha256"),
        (lambda bk: (bk / MANIFEST).write_text((bk / MANIFEST).read_text()[:40]), "truncated"),
        (lambda bk: (bk / MANIFEST).unlink(), "no manifest.json"),
        (lambda bk: (bk / "memory.db").write_bytes(b"short"), "expected"),
    ],
    ids=["flipped-byte", "truncated-manifest", "no-manifest", "truncated-db"],
)
def test_damaged_backup_is_refused_and_store_untouched(tmp_path: Path, damage, match) -> None:
    with make() as memory:
        fill(memory)
        backup(memory, tmp_path / "bk")
        memory.remember(NewRecord(text="only in the live store"))
        before = snapshot(memory)
    damage(tmp_path / "bk")
    with pytest.raises(BackupError, match=match):
        restore(load_settings(), tmp_path / "bk", force=True)
    with make() as memory:
        assert snapshot(memory) == before
    leftovers = [p.name for p in load_settings().paths.data_dir.iterdir() if "restore" in p.name]
    assert leftovers == []


def test_backup_of_newer_schema_is_refused(tmp_path: Path) -> None:
    with make() as memory:
        fill(memory)
        backup(memory, tmp_path / "bk")
    manifest = json.loads((tmp_path / "bk" / MANIFEST).read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / "bk" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match=f"schema {SCHEMA_VERSION + 1}"):
        restore(load_settings(), tmp_path / "bk", force=True)


def test_restore_into_non_empty_store_needs_force(tmp_path: Path) -> None:
    with make() as memory:
        fill(memory)
        backup(memory, tmp_path / "bk")
        memory.remember(NewRecord(text="something newer"))
    with pytest.raises(BackupError, match="--force"):
        restore(load_settings(), tmp_path / "bk")
    with make() as memory:
        assert memory.backend.count() == len(DOCS) + 1


def test_restore_refuses_while_another_process_has_the_store_open(tmp_path: Path) -> None:
    with make() as memory:
        fill(memory)
        backup(memory, tmp_path / "bk")
        with pytest.raises(BackupError, match="open"):
            restore(load_settings(), tmp_path / "bk", force=True)
        assert memory.backend.count() == len(DOCS)


def test_restore_of_missing_backup_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        restore(load_settings(), tmp_path / "nope")
