"""Numbered schema migrations of the task graph, recorded in ``schema_migrations``.

- ``task_deps`` holds one row per edge (task waits for ``depends_on``). Both ends cascade
  on delete, so removing a task with ``--force`` also removes the edges into it.
- ``task_memory`` links a task to memory record ids (in ``memory.db``; not a foreign key).
"""

from __future__ import annotations

import sqlite3

from magray.errors import SchemaError
from magray.sqlite_migrations import apply, current_version

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "current_version", "migrate"]

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


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction. Returns the versions applied."""
    have = current_version(conn)
    if have > SCHEMA_VERSION:
        raise SchemaError(
            f"the task graph has schema version {have}, newer than this MAGRAY understands "
            f"({SCHEMA_VERSION}); upgrade MAGRAY."
        )
    return apply(conn, MIGRATIONS)
