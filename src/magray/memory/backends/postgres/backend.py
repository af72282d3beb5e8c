"""The PostgreSQL + pgvector backend: one tenant schema of one database is one store."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from magray.errors import BackupError, ConfigError, StoreError
from magray.memory.backends.base import Backend, Warn
from magray.memory.backends.postgres import connection, schema
from magray.memory.backends.postgres.edits import EditsMixin
from magray.memory.backends.postgres.lifecycle import LifecycleMixin
from magray.memory.backends.postgres.records import RecordsMixin
from magray.memory.backends.postgres.search import SearchMixin
from magray.memory.backends.postgres.sources import SourcesMixin
from magray.memory.backends.postgres.transfer import TransferMixin, restore_rows

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.memory.transfer.manifest import BackupManifest


class PostgresBackend(
    RecordsMixin, EditsMixin, SearchMixin, LifecycleMixin, SourcesMixin, TransferMixin
):
    """Records, keyword index (tsvector + GIN) and vector indexes (HNSW) in PostgreSQL."""

    @classmethod
    def connect(
        cls,
        dsn: str,
        *,
        schema_name: str = connection.DEFAULT_SCHEMA,
        vector_kind: str = "vector",
        lock_timeout: float = 10.0,
        ef_search: int = 0,
        pool_size: int = 4,
    ) -> PostgresBackend:
        """Open (creating or migrating) the store in ``schema_name`` of the database at
        ``dsn``. Raises StoreError when the server cannot be used, SchemaError when the
        schema was written by a newer MAGRAY."""
        if vector_kind not in {"vector", "halfvec"}:
            raise ConfigError(
                f"memory.pg_vector_type must be vector or halfvec (got {vector_kind!r})."
            )
        psycopg = connection.driver()
        where = connection.redact(dsn)
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=30) as conn:
                connection.check_server(conn, where)
                conn.autocommit = False
                schema.migrate(conn, schema_name, time.time())
                conn.commit()
            base_ef = min(1000, ef_search) if ef_search > 0 else 100
            pool = connection.open_pool(dsn, schema_name, max_size=pool_size, ef_search=base_ef)
        except psycopg.Error as exc:
            raise connection.translate(exc, where) from None
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise connection.translate(exc, where) from None
            raise
        return cls(
            pool,
            dsn=dsn,
            schema_name=schema_name,
            vector_kind=vector_kind,
            lock_timeout=lock_timeout,
            ef_search=ef_search,
        )


def _dsn(settings: Settings) -> str:
    return settings.memory.postgres_dsn()


def open_from_settings(settings: Settings, tenant: str | None = None) -> PostgresBackend:
    return PostgresBackend.connect(
        _dsn(settings),
        schema_name=connection.schema_name(tenant, settings.memory.pg_schema),
        vector_kind=settings.memory.pg_vector_type,
        lock_timeout=settings.memory.lock_timeout,
        ef_search=settings.memory.search_ef,
    )


class PostgresKind:
    """The registry entry of the PostgreSQL backend."""

    name = "postgres"

    def open(self, settings: Settings, *, warn: Warn | None = None) -> Backend:
        return open_from_settings(settings)

    def holds_records(self, settings: Settings) -> bool:
        """One short connection, no pool, no migration: a schema not made yet holds none."""
        dsn = _dsn(settings)
        name = connection.schema_name(None, settings.memory.pg_schema)
        psycopg = connection.driver()
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=30) as conn:
                if schema.current_version(conn, name) == 0:
                    return False
                row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {name}.records)").fetchone()
        except psycopg.Error as exc:
            raise connection.translate(exc, connection.redact(dsn)) from None
        return bool(row and row[0])

    def restore(self, settings: Settings, manifest: BackupManifest, *, force: bool) -> None:
        """Replace the schema's store by the snapshot, in one transaction (all or nothing)."""
        from magray.memory.transfer.manifest import sha256

        src = manifest.path
        names = {f.path for f in manifest.files}
        from magray.memory.backends.postgres.transfer import RECORDS_FILE, STATE_FILE

        if not {RECORDS_FILE, STATE_FILE} <= names:
            raise BackupError(
                f"{src} is not a backup of a PostgreSQL store (it lacks {RECORDS_FILE});"
                " restore it with memory.backend = sqlite, or migrate it afterwards."
            )
        for entry in manifest.files:
            path = src / entry.path
            if (
                not path.is_file()
                or path.stat().st_size != entry.size
                or sha256(path) != entry.sha256
            ):
                raise BackupError(
                    f"the backup file {path} is missing or damaged (its size or sha256"
                    " differs from the manifest); nothing was changed."
                )
        if manifest.schema_version > schema.SCHEMA_VERSION:
            raise BackupError(
                f"the backup {src} holds schema {manifest.schema_version}, newer than this"
                f" MAGRAY's {schema.SCHEMA_VERSION}; upgrade MAGRAY."
            )
        backend = open_from_settings(settings)
        name, where = backend.schema, backend.location
        try:
            with connection.transaction(backend._pool, where) as conn:
                conn.execute(
                    "SELECT set_config('lock_timeout', %s, true),"
                    " set_config('synchronous_commit', 'on', true)",
                    (f"{max(1, int(backend.lock_timeout * 1000))}ms",),
                )
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema.lock_key(name),))
                row = conn.execute("SELECT COUNT(*) FROM records").fetchone()
                if row and row[0] and not force:
                    raise BackupError(
                        f"the store at {where} holds {row[0]} records; restore with --force to"
                        " replace them (or back them up first)."
                    )
                conn.execute(f"DROP SCHEMA {name} CASCADE")
                schema.migrate(conn, name, time.time())
                conn.execute(f"SET LOCAL search_path TO {name}, public")
                if manifest.embedding_dim:
                    schema.fix_vector_column(conn, backend.vector_kind, manifest.embedding_dim)
                restore_rows(conn, src, manifest.embedding_model)
        except StoreError as exc:
            if isinstance(exc, BackupError):
                raise
            raise BackupError(
                f"the restore into {where} failed ({exc}); nothing was changed."
            ) from None
        finally:
            backend.close()


KIND = PostgresKind()
