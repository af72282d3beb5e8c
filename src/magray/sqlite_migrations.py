"""Numbered SQLite schema migrations, recorded in ``schema_migrations`` (shared by stores).

A migration is ``(version, name, SQL script)``. Each script runs in its own transaction
together with its bookkeeping row, so a crash leaves either the old or the new schema.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

Migration = tuple[int, str, str]


def current_version(conn: sqlite3.Connection) -> int:
    """The highest migration applied to ``conn`` (0 for an empty database)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def apply(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations newer than the database's version; returns those applied."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied: list[int] = []
    have = current_version(conn)
    for version, name, script in migrations:
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
