"""The one SQLite helper: every database of a home opens through `connect` with the same
pragmas and keeps its schema in numbered migrations; a newer schema is refused; two
processes creating a database at once do not trip over each other."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import magray.sqlite_migrations as sm
from magray.errors import SchemaError
from magray.paths import DATABASE_FILES, Paths, resolve_paths


def _open_every_database(paths: Paths) -> None:
    from magray.agent.conversations import ConversationLog
    from magray.embed.cache import EmbeddingCache
    from magray.llm.usage import UsageStore
    from magray.memory.backends.sqlite.store import Store
    from magray.observability.audit_chain import AuditChain
    from magray.server.keys import KeyStore
    from magray.tasks.graph import TaskGraph
    from magray.tools.audit import AuditLog

    ConversationLog(paths.conversations_db).close()
    EmbeddingCache(paths.embed_cache_db).close()
    UsageStore(paths.llm_db).close()
    Store(paths.memory_db).close()
    AuditChain(paths.audit_chain_db).append(tenant="t", actor="a", action="x")
    KeyStore(paths.server_keys_db).list()
    TaskGraph(paths.tasks_db).close()
    AuditLog(paths.audit_db).record("file_read", {}, "allow", "ok")


def test_every_database_of_a_home_is_named_by_paths_and_migrated(magray_home: Path) -> None:
    paths = resolve_paths()
    assert set(paths.databases()) == set(DATABASE_FILES)
    _open_every_database(paths)
    on_disk = {p.name for p in paths.data_dir.glob("*.db")}
    assert on_disk == set(DATABASE_FILES.values())
    for name, path in paths.databases().items():
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", name
            versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
            assert versions and versions == sorted(versions) and versions[0] == 1, name
        finally:
            conn.close()


def test_connect_sets_the_same_pragmas(tmp_path: Path) -> None:
    conn = sm.connect(tmp_path / "x.db", timeout=7.5)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 7500
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


def test_a_database_from_a_newer_magray_is_refused(magray_home: Path) -> None:
    from magray.agent.conversations import ConversationLog
    from magray.llm.usage import UsageStore

    paths = resolve_paths()
    for path, open_it in ((paths.conversations_db, ConversationLog), (paths.llm_db, UsageStore)):
        open_it(path).close()
        conn = sqlite3.connect(path)
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
        conn.commit()
        conn.close()
        with pytest.raises(SchemaError, match=rf"{path.name} was written by a newer MAGRAY"):
            open_it(path)


def test_a_migration_another_process_applied_meanwhile_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrations = [(1, "one", "CREATE TABLE t (x INTEGER);"), (2, "two", "CREATE TABLE u (y);")]
    path = tmp_path / "x.db"
    sm.connect(path, migrations=migrations).close()  # the other process, first
    # This process read the version before the other one committed: it still sees 0.
    real = sm.current_version
    stale = [0]

    def version(conn: sqlite3.Connection) -> int:
        return stale.pop() if stale else real(conn)

    monkeypatch.setattr(sm, "current_version", version)
    conn = sm.connect(path, migrations=migrations)
    try:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        assert rows == [(1,), (2,)] and stale == []
    finally:
        conn.close()


def test_a_broken_migration_still_fails(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        sm.connect(tmp_path / "x.db", migrations=[(1, "bad", "CREATE TABLE;")])
