"""Contract: snapshots, restores and integrity checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import Settings
from magray.errors import BackupError
from magray.memory.backends import Backend, backend_kind
from magray.memory.records import Layer, NewRecord
from magray.memory.transfer.backup import backup, restore
from magray.memory.transfer.manifest import read_manifest
from tests.memory.contract.conftest import Insert


def test_verify_is_clean_on_a_healthy_store(backend: Backend, insert: Insert) -> None:
    insert([NewRecord("alpha"), NewRecord("beta", layer=Layer.ASSETS)])
    check = backend.verify()
    assert check.problems == []
    assert check.checked["records"] == 2


def test_snapshot_writes_a_consistent_copy(
    backend: Backend, insert: Insert, tmp_path: Path
) -> None:
    insert([NewRecord("alpha"), NewRecord("beta", layer=Layer.ASSETS)])
    backend.sync_indexes()
    folder = tmp_path / "snap"
    folder.mkdir()
    snap = backend.snapshot(folder)
    assert snap.files and all((folder / name).is_file() for name in snap.files)
    assert dict(snap.counts) == {"interact": 1, "insights": 0, "assets": 1}
    assert snap.embedding_dim == 32 and snap.embedding_model == "hash-32"


def test_backup_and_restore_round_trip(settings: Settings, tmp_path: Path) -> None:
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    with Memory(settings, embedder=HashEmbedder(dim=32)) as memory:
        kept = memory.remember(NewRecord("kept forever", layer=Layer.ASSETS))
        manifest = backup(memory, tmp_path / "bk")
        memory.remember(NewRecord("added after the backup"))
    assert manifest.records == 1
    with pytest.raises(BackupError, match="--force"):
        restore(settings, tmp_path / "bk")
    restored = restore(settings, tmp_path / "bk", force=True)
    assert restored.counts == manifest.counts
    with Memory(settings, embedder=HashEmbedder(dim=32)) as memory:
        assert [r.record.id for r in memory.backend.iter_records()] == [kept.id]
        assert memory.backend.verify().problems == []


def test_restore_refuses_a_damaged_backup(backend: Backend, insert: Insert, tmp_path: Path,
                                          settings: Settings) -> None:  # fmt: skip
    insert([NewRecord("alpha")])
    from magray.memory.service import Memory

    memory = Memory.__new__(Memory)  # only .backend and .settings are used by backup
    memory.backend, memory.settings = backend, settings
    backup(memory, tmp_path / "bk")
    manifest = read_manifest(tmp_path / "bk")
    first = tmp_path / "bk" / manifest.files[0].path
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(BackupError, match="nothing was changed"):
        backend_kind(settings.get_str("memory.backend")).restore(settings, manifest, force=True)
    assert backend.count() == 1
