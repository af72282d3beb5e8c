"""The PostgreSQL + pgvector memory backend (``memory.backend = "postgres"``).

Imported only when that backend is chosen; its driver (psycopg, psycopg-pool, pgvector)
comes with ``pip install 'magray[postgres]'``.
"""

from __future__ import annotations

from magray.memory.backends.postgres.backend import KIND, PostgresBackend, PostgresKind

__all__ = ["KIND", "PostgresBackend", "PostgresKind"]
