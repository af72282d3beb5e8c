"""Processes opening a new database together: the switch to WAL waits like any busy wait."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from magray.sqlite_migrations import connect

MIGRATIONS = [(1, "one table", "CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT);")]


def test_openers_of_a_new_database_at_once_all_get_it(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(40):
        path = tmp_path / f"new-{round_}.db"
        start = threading.Barrier(4)

        def open_it(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                conn = connect(path, timeout=60, migrations=MIGRATIONS)
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                conn.close()
                if mode != "wal":
                    failures.append(f"journal mode {mode}")
            except sqlite3.Error as exc:
                failures.append(str(exc))

        openers = [threading.Thread(target=open_it) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join()
    assert failures == []
