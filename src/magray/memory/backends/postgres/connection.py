"""Connections to PostgreSQL: the driver (imported lazily), a pool per store, the checks
made at connect (pgvector ≥ 0.8, a UTF-8 database) and the tenant's schema.

Tenants are schemas: one schema per tenant in one database, chosen per connection with
``search_path``. A schema holds the whole store (records, logs, meta, migrations), so
tenants are isolated by name, backed up and dropped one by one, and need no tenant column
in any index or query plan.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError, StoreError, StoreLockedError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

MIN_PGVECTOR = (0, 8, 0)
DEFAULT_SCHEMA = "magray"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
INSTALL_HINT = "install it with `pip install 'magray[postgres]'`"


def driver() -> Any:
    """The ``psycopg`` module, or a StoreError naming the extra to install."""
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise StoreError(
            f"the postgres memory backend needs psycopg, psycopg-pool and pgvector ({exc});"
            f" {INSTALL_HINT}."
        ) from None
    return psycopg


def schema_name(tenant: str | None = None, base: str = DEFAULT_SCHEMA) -> str:
    """The schema of ``tenant`` (``base`` itself for no tenant): ``<base>_<tenant>``, or
    ``<base>__<hash>`` for a tenant whose name is no identifier (a '-') or is too long.
    Tenant names start with a letter or digit, so the two forms never meet."""
    name = base.lower()
    if tenant:
        name = f"{name}_{tenant}"
        if not _SCHEMA_NAME.match(name):
            digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:24]
            name = f"{base.lower()}__{digest}"
    if not _SCHEMA_NAME.match(name):
        raise ConfigError(
            f"{name!r} cannot name a PostgreSQL schema; use lower-case letters, digits and"
            " underscores (at most 63, not starting with a digit)."
        )
    return name


def redact(dsn: str) -> str:
    """``dsn`` without its password (for messages and ``stats``)."""
    dsn = re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", dsn)
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", dsn)


def parse_version(text: str) -> tuple[int, ...]:
    """'0.8.1' → (0, 8, 1); anything unparsable → (0,)."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts) or (0,)


def translate(exc: Exception, where: str) -> StoreError:
    """A psycopg failure as one sentence a user can act on."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    name = type(exc).__name__
    if name in {"LockNotAvailable", "QueryCanceled"}:
        return StoreLockedError(f"the memory store at {where} is busy ({text}); try again.")
    if name == "DiskFull":
        return StoreError(f"the disk of the PostgreSQL server at {where} is full ({text}).")
    if name in {"OperationalError", "PoolTimeout", "ConnectionTimeout"}:
        return StoreError(
            f"cannot reach PostgreSQL at {where} ({text}); check memory.dsn and that the"
            " server is running."
        )
    return StoreError(f"the PostgreSQL memory store at {where} failed: {text}.")


def require_pgvector(version: str, where: str) -> None:
    """Refuse pgvector before 0.8: its filtered HNSW scans return too few rows."""
    if parse_version(version) < MIN_PGVECTOR:
        raise StoreError(
            f"the database at {where} has pgvector {version}; MAGRAY needs 0.8 or newer"
            " (filtered vector search returns too few rows before it): upgrade the package"
            " on the server, then run ALTER EXTENSION vector UPDATE."
        )


def check_server(conn: psycopg.Connection[Any], where: str) -> str:
    """Create pgvector if missing and refuse versions without iterative index scans.

    Returns the installed pgvector version.
    """
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is None:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except Exception as exc:
            raise StoreError(
                f"the database at {where} lacks the pgvector extension and it cannot be"
                f" created ({str(exc).strip()}); ask its owner to run CREATE EXTENSION vector."
            ) from None
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
    version = str(row[0]) if row else "0"
    require_pgvector(version, where)
    (encoding,) = conn.execute("SHOW server_encoding").fetchone() or ("?",)
    if str(encoding).upper() not in {"UTF8", "UTF-8"}:
        raise StoreError(
            f"the database at {where} uses the {encoding} encoding; create it with"
            " ENCODING 'UTF8' (e.g. CREATE DATABASE magray TEMPLATE template0 ENCODING"
            " 'UTF8' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8')."
        )
    return version


def open_pool(
    dsn: str, schema: str, *, max_size: int = 4, ef_search: int = 100
) -> ConnectionPool[Any]:
    """A pool of autocommit connections that speak pgvector and see ``schema`` first."""
    from pgvector.psycopg import register_vector
    from psycopg_pool import ConnectionPool

    def configure(conn: psycopg.Connection[Any]) -> None:
        register_vector(conn)
        conn.execute(f"SET search_path TO {schema}, public")
        # Filtered HNSW scans go on until enough rows pass the WHERE (pgvector ≥ 0.8).
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")
        # Access stats commit without waiting for the WAL flush; every write of records
        # turns it back on for its own transaction (``Core._write``).
        conn.execute("SET synchronous_commit = off")

    pool: ConnectionPool[Any] = ConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        configure=configure,
        kwargs={"autocommit": True},
        open=False,
        name=f"magray-{schema}",
    )
    pool.open(wait=True, timeout=30.0)
    return pool


@contextmanager
def transaction(
    pool: ConnectionPool[Any], where: str, *, atomic: bool = True
) -> Iterator[psycopg.Connection[Any]]:
    """One connection from ``pool``; with ``atomic`` in one transaction, committed whole or
    rolled back, else each statement on its own (one round trip per read)."""
    from contextlib import nullcontext

    psycopg = driver()
    try:
        with pool.connection() as conn, conn.transaction() if atomic else nullcontext():
            yield conn
    except psycopg.Error as exc:
        raise translate(exc, where) from None
    except Exception as exc:
        if type(exc).__name__ == "PoolTimeout":
            raise translate(exc, where) from None
        raise
