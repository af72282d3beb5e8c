"""Moving a store between the embedded backend and PostgreSQL, and backups on PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.config import Settings, load_settings
from magray.errors import StoreError
from magray.memory.backends import backend_kind
from magray.memory.backends.base import Backend
from magray.memory.migrate import copy
from magray.memory.records import Layer, NewRecord, Query, SearchMode, Source
from magray.memory.service import Memory
from tests.fakes import HashEmbedder


def settings_for(backend: str, dsn: str, schema: str, home: Path | None = None) -> Settings:
    overrides = {"memory.backend": backend, "memory.dsn": dsn, "memory.pg_schema": schema}
    if home is None:
        return load_settings(overrides)
    from magray.paths import Paths

    paths = Paths(home / "config", home / "data", home / "models", home / "logs")
    return load_settings(overrides, paths_factory=lambda: paths)


def fill(memory: Memory) -> None:
    memory.remember_many(
        [
            NewRecord(
                text=f"Запись номер {i}: the staging database listens on port {5400 + i}",
                layer=list(Layer)[i % 3],
                kind="fact" if i % 2 else "note",
                tags=("infra", f"t{i % 4}"),
                project="demo" if i % 3 else None,
                session="s1" if i % 5 == 0 else None,
                source=Source("/srv/notes.md", i * 10, i * 10 + 9, i, i + 1)
                if i % 4 == 0
                else None,
                importance=round(0.1 + (i % 9) / 10, 2),
                pinned=i % 7 == 0,
            )
            for i in range(37)
        ]
    )
    # Stats that must survive: accesses and a promotion score.
    memory.recall(Query(text="staging database", k=5, mode=SearchMode.HYBRID))


def everything(backend: Backend) -> dict[str, tuple[object, ...]]:
    rows = list(backend.iter_records())
    vectors = backend.vectors([r.num for r in rows])
    return {
        r.record.id: (dataclasses.astuple(r.record), vectors.get(r.num, (None, b""))[1])
        for r in rows
    }


def test_round_trip_sqlite_postgres_sqlite_keeps_every_field_and_vector(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    lite = settings_for("sqlite", postgres_dsn, postgres_schema, tmp_path / "a")
    with Memory(lite, embedder=embedder) as memory:
        fill(memory)
    source = backend_kind("sqlite").open(lite)
    pg = backend_kind("postgres").open(settings_for("postgres", postgres_dsn, postgres_schema))
    back_settings = settings_for("sqlite", postgres_dsn, postgres_schema, tmp_path / "b")
    back = backend_kind("sqlite").open(back_settings)
    try:
        there = copy(source, pg, batch=7)
        assert there.ok and there.records == there.copied == there.verified == 37
        again = copy(pg, back, batch=5)
        assert again.ok and again.copied == 37
        original = everything(source)
        assert everything(pg) == original
        assert everything(back) == original
        assert pg.embedding_model() == back.embedding_model() == source.embedding_model()
    finally:
        for b in (source, pg, back):
            b.close()
    # The copy answers the same question the same way.
    with Memory(back_settings, embedder=embedder) as memory:
        hits = memory.recall(Query(text="port 5403", k=3, mode=SearchMode.KEYWORD))
        assert "port 5403" in hits[0].record.text


def test_an_interrupted_migration_resumes(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    embedder = HashEmbedder()
    lite = settings_for("sqlite", postgres_dsn, postgres_schema, tmp_path / "a")
    with Memory(lite, embedder=embedder) as memory:
        fill(memory)
    source = backend_kind("sqlite").open(lite)
    pg = backend_kind("postgres").open(settings_for("postgres", postgres_dsn, postgres_schema))

    class Interrupted(Exception):
        pass

    def stop_after_two_batches(done: int, total: int | None) -> None:
        if done >= 20:
            raise Interrupted

    try:
        with pytest.raises(Interrupted):
            copy(source, pg, batch=10, progress=stop_after_two_batches)
        assert pg.count() == 20  # two whole batches, nothing of the third
        report = copy(source, pg, batch=10)
        assert report.ok
        assert (report.copied, report.already_there, report.verified) == (17, 20, 37)
        assert everything(pg) == everything(source)
    finally:
        source.close()
        pg.close()


def test_migrate_refuses_a_destination_of_another_model(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    lite = settings_for("sqlite", postgres_dsn, postgres_schema, tmp_path / "a")
    with Memory(lite, embedder=HashEmbedder()) as memory:
        fill(memory)
    pg_settings = settings_for("postgres", postgres_dsn, postgres_schema)
    with Memory(pg_settings, embedder=HashEmbedder(dim=32, model_id="other")) as memory:
        memory.remember(NewRecord(text="of another model"))
    source = backend_kind("sqlite").open(lite)
    pg = backend_kind("postgres").open(pg_settings)
    try:
        with pytest.raises(StoreError, match="migrate into an empty store"):
            copy(source, pg)
    finally:
        source.close()
        pg.close()


def test_migrate_command_streams_into_postgres_and_back(
    postgres_dsn: str, postgres_schema: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from magray.cli.main import app

    monkeypatch.setenv("MAGRAY_MEMORY_PG_SCHEMA", postgres_schema)
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        fill(memory)
    runner = CliRunner()
    out = runner.invoke(app, ["memory", "migrate", "--to", "postgres", "--dsn", postgres_dsn])
    assert out.exit_code == 0, out.output
    assert "migrated 37 record(s)" in out.output and "37 verified" in out.output
    out = runner.invoke(
        app, ["memory", "migrate", "--to", "postgres", "--dsn", postgres_dsn, "--json"]
    )
    assert out.exit_code == 0, out.output
    assert '"already_there": 37' in out.output and '"ok": true' in out.output
    # Back into the embedded store of another, empty home.
    other = tmp_path / "other-home"
    other.mkdir()
    monkeypatch.setenv("MAGRAY_HOME", str(other))
    out = runner.invoke(app, ["memory", "migrate", "--to", "sqlite", "--dsn", postgres_dsn])
    assert out.exit_code == 0, out.output
    assert "37 copied, 0 already there, 37 verified" in out.output
    listed = runner.invoke(app, ["memory", "list", "--limit", "100", "--json"])
    assert listed.exit_code == 0 and listed.output.count('"id"') == 37
    bad = runner.invoke(app, ["memory", "migrate", "--to", "mysql", "--dsn", postgres_dsn])
    assert bad.exit_code == 2 and "--to must be postgres or sqlite" in bad.output


def test_backup_and_restore_on_postgres(
    postgres_dsn: str, postgres_schema: str, tmp_path: Path
) -> None:
    from magray.memory.transfer.backup import backup, restore

    settings = settings_for("postgres", postgres_dsn, postgres_schema)
    embedder = HashEmbedder()
    with Memory(settings, embedder=embedder) as memory:
        fill(memory)
        before = everything(memory.backend)
        log_before = memory.backend.lifecycle_log()
        times_before = {
            r.record.id: t
            for r in memory.backend.iter_records()
            if (t := memory.backend.access_times().get(r.num))
        }
        manifest = backup(memory, tmp_path / "bk")
        assert manifest.records == 37
        memory.remember(NewRecord(text="written after the backup"))
        assert memory.backend.verify().problems == []
    restore(settings, tmp_path / "bk", force=True)
    with Memory(settings, embedder=embedder) as memory:
        assert everything(memory.backend) == before
        assert memory.backend.lifecycle_log() == log_before
        times_after = {
            r.record.id: t
            for r in memory.backend.iter_records()
            if (t := memory.backend.access_times().get(r.num))
        }
        assert times_after == times_before and times_before
        assert memory.backend.verify().problems == []
        memory.remember(NewRecord(text="the restored store takes writes", layer=Layer.ASSETS))
        assert memory.backend.count() == 38
