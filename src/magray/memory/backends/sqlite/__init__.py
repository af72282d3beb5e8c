"""The built-in SQLite + FTS5 + HNSW memory backend."""

from __future__ import annotations

from magray.memory.backends.sqlite.backend import KIND, SqliteBackend, SqliteKind

__all__ = ["KIND", "SqliteBackend", "SqliteKind"]
