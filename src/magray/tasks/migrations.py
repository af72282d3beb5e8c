"""Numbered schema migrations of the task graph, recorded in ``schema_migrations``.

- ``task_deps`` holds one row per edge (task waits for ``depends_on``). Both ends cascade
  on delete, so removing a task with ``--force`` also removes the edges into it.
- ``task_memory`` links a task to memory record ids (in ``memory.db``; not a foreign key).
"""

from __future__ import annotations

import sqlite3
import time

from magray.errors import SchemaError

M1_INITIAL = """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL DEFAULT 'todo'
                CHECK (state IN ('todo', 'doing', 'blocked', 'done', 'cancelled')),
            priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            done_at REAL
        );
        CREATE INDEX tasks_state ON tasks (state, priority, created_at);

        CREATE TABLE task_deps (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            depends_on TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            PRIMARY KEY (task_id, depends_on),
            CHECK (task_id <> depends_on)
        ) WITHOUT ROWID;
        CREATE INDEX task_deps_on ON task_deps (depends_on);

        CREATE TABLE task_memory (
            task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            record_id TEXT NOT NULL,
            PRIMARY KEY (task_id, record_id)
        ) WITHOUT ROWID;
"""

# (version, name, SQL script). A script runs inside one transaction with its bookkeeping row.
MIGRATIONS: tuple[tuple[int, str, str], ...] = ((1, "initial task graph", M1_INITIAL),)

SCHEMA_VERSION = MIGRATIONS[-1][0]


def current_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to ``conn`` (0 for an empty database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction. Returns the versions applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    have = current_version(conn)
    if have > SCHEMA_VERSION:
        raise SchemaError(
            f"the task graph has schema version {have}, newer than this MAGRAY understands "
            f"({SCHEMA_VERSION}); upgrade MAGRAY."
        )
    applied: list[int] = []
    for version, name, script in MIGRATIONS:
        if version <= have:
            continue
        quoted = name.replace("'", "''")
        try:
            # executescript commits any open transaction first, so BEGIN lives in the script.
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                "INSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({int(version)}, '{quoted}', {time.time()!r});\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied
