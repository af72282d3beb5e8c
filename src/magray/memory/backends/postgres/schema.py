"""Numbered migrations of a PostgreSQL memory schema, recorded in ``schema_migrations``.

One schema is one store (one tenant). Design notes:
- ``records.num`` is an identity column: the label of a record, never reused.
- ``tsv`` is a generated ``tsvector`` (``simple`` configuration: whole words, lower-cased by
  the database's UTF-8 locale, no stemming) with a GIN index: the keyword index is part of
  the row and cannot drift from it.
- ``embedding`` starts without a dimension; the first write fixes it to the store's model
  (``vector(dim)`` or ``halfvec(dim)``) and creates one HNSW index per layer (partial
  indexes), so a search of one layer walks a graph of that layer only.
- Tags are a ``text[]`` with a GIN index (``tags @> ARRAY[...]`` for "all of").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.errors import SchemaError
from magray.memory.records import Layer

if TYPE_CHECKING:
    import psycopg

# Texts longer than this are keyword-indexed on their first characters only (a tsvector
# holds at most 1 MB; vectors and the stored text are unaffected).
TSV_CHARS = 200_000

M1_INITIAL = f"""
-- Case and diacritics folded the way SQLite's unicode61 tokenizer folds them (NFD, drop
-- combining marks, lower-case): "Café" and "cafe", "Ёлка" and "елка" are one word.
CREATE FUNCTION fold(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN lower(regexp_replace(normalize(t, NFD), '[\\u0300-\\u036f]', '', 'g'));

CREATE TABLE records (
    num bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text COLLATE "C" NOT NULL UNIQUE,
    text text NOT NULL,
    layer text NOT NULL CHECK (layer IN ('interact', 'insights', 'assets')),
    kind text NOT NULL,
    tags text[] NOT NULL DEFAULT '{{}}',
    project text NOT NULL DEFAULT '',
    session text,
    source_uri text,
    source_start bigint,
    source_end bigint,
    source_line_start bigint,
    source_line_end bigint,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    layer_since double precision NOT NULL,
    importance double precision NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
    pinned boolean NOT NULL DEFAULT false,
    promotion_score double precision,
    content_hash text NOT NULL,
    embedding_model text,
    embedding vector,
    tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', fold(left(text, {TSV_CHARS})))) STORED
);
CREATE UNIQUE INDEX records_dedup ON records (layer, project, content_hash);
CREATE INDEX records_layer_created ON records (layer, created_at);
CREATE INDEX records_source ON records (source_uri, project, layer);
CREATE INDEX records_session ON records (session);
CREATE INDEX records_tags ON records USING gin (tags);
CREATE INDEX records_tsv ON records USING gin (tsv);

-- Access statistics change on every recall: kept in a narrow table of their own, so a bump
-- rewrites a few bytes (a HOT update) instead of the record's row and its index entries.
CREATE TABLE record_stats (
    num bigint PRIMARY KEY REFERENCES records (num) ON DELETE CASCADE,
    access_count bigint NOT NULL DEFAULT 0,
    last_access_at double precision
) WITH (fillfactor = 70);

CREATE TABLE access_log (
    num bigint NOT NULL REFERENCES records (num) ON DELETE CASCADE,
    at double precision NOT NULL
);
CREATE INDEX access_log_num ON access_log (num, at);

CREATE TABLE ingested_sources (
    uri text NOT NULL,
    project text NOT NULL DEFAULT '',
    layer text NOT NULL,
    content_hash text NOT NULL,
    chunks bigint NOT NULL,
    ingested_at double precision NOT NULL,
    PRIMARY KEY (uri, project, layer)
);

CREATE TABLE lifecycle_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at double precision NOT NULL,
    record_id text NOT NULL,
    action text NOT NULL CHECK (action IN ('promote', 'expire', 'merge')),
    from_layer text NOT NULL,
    to_layer text,
    score double precision,
    reasons text NOT NULL DEFAULT '[]'
);

CREATE TABLE history_archive (
    record_id text PRIMARY KEY,
    layer text NOT NULL,
    created_at double precision NOT NULL,
    layer_since double precision NOT NULL,
    importance double precision NOT NULL,
    pinned boolean NOT NULL,
    access_times double precision[] NOT NULL,
    archived_at double precision NOT NULL
);

CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
"""

# A bounded access history, as in the SQLite store (``magray.memory.access``): per record at
# most the first and the last 32 access times, in one array (``access_history``); the log
# keeps only the accesses not yet folded into it (appended, no foreign key, one index on
# its sequence), so a flush of accesses writes the log's last pages and the narrow
# ``record_stats`` rows. The old log moves over, bounded.
M2_ACCESS_HISTORY = """
CREATE FUNCTION bounded_times(t double precision[]) RETURNS double precision[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT CASE WHEN cardinality(s) <= 64 THEN s
        ELSE s[1:32] || s[cardinality(s) - 31:cardinality(s)] END
        FROM (SELECT ARRAY(SELECT x FROM unnest(t) AS x ORDER BY x) AS s) AS sorted);

CREATE TABLE access_history (
    num bigint PRIMARY KEY REFERENCES records (num) ON DELETE CASCADE,
    times double precision[] NOT NULL
);
INSERT INTO access_history (num, times)
    SELECT num, bounded_times(array_agg(at)) FROM access_log GROUP BY num;
DROP TABLE access_log;
CREATE TABLE access_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    num bigint NOT NULL,
    at double precision NOT NULL
);
"""

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "initial schema", M1_INITIAL),
    (2, "bounded access history", M2_ACCESS_HISTORY),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def lock_key(schema: str) -> str:
    """The advisory-lock key text of ``schema`` (the store's single-writer lock)."""
    return f"magray.memory.{schema}"


def current_version(conn: psycopg.Connection[Any], schema: str) -> int:
    row = conn.execute(
        "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = 'schema_migrations'",
        (schema,),
    ).fetchone()
    if row is None:
        return 0
    found = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_migrations")
    (version,) = found.fetchone() or (0,)
    return int(version)


def migrate(conn: psycopg.Connection[Any], schema: str, now: float) -> list[int]:
    """Create ``schema`` if needed and apply pending migrations in one transaction, under
    the store's writer lock (two processes opening a new store do not race)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock_key(schema),))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        conn.execute(f"SET LOCAL search_path TO {schema}, public")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at double precision NOT NULL)"
        )
        have = current_version(conn, schema)
        if have > SCHEMA_VERSION:
            raise SchemaError(
                f"the PostgreSQL schema {schema} was written by a newer MAGRAY (schema {have}"
                f" > {SCHEMA_VERSION}); upgrade MAGRAY to use it."
            )
        for version, name, script in MIGRATIONS:
            if version <= have:
                continue
            conn.execute(script.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, name, now),
            )
            applied.append(version)
    return applied


def vector_type(conn: psycopg.Connection[Any]) -> tuple[str, int | None]:
    """('vector' or 'halfvec', dimension or None) of the ``embedding`` column."""
    row = conn.execute(
        "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = 'records'::regclass AND a.attname = 'embedding'"
    ).fetchone()
    text = str(row[0]) if row else "vector"
    name, _, rest = text.partition("(")
    return name, int(rest.rstrip(")")) if rest else None


def fix_vector_column(
    conn: psycopg.Connection[Any], kind: str, dim: int, *, m: int = 16, ef_construction: int = 64
) -> bool:
    """Type ``embedding`` as ``kind(dim)`` and (re)create the per-layer HNSW indexes when it
    is not typed so yet (inside the caller's write transaction). Returns whether it changed.

    Vectors of another dimension cannot be cast: they are dropped (a re-embed rewrites them).
    """
    have, have_dim = vector_type(conn)
    if have == kind and have_dim == dim:
        return False
    for layer in Layer:
        conn.execute(f"DROP INDEX IF EXISTS records_hnsw_{layer}")
    if have_dim is not None and have_dim != dim:
        conn.execute("UPDATE records SET embedding = NULL, embedding_model = NULL")
    conn.execute(
        f"ALTER TABLE records ALTER COLUMN embedding TYPE {kind}({dim})"
        f" USING embedding::{kind}({dim})"
    )
    ops = f"{kind}_cosine_ops"
    for layer in Layer:
        conn.execute(
            f"CREATE INDEX records_hnsw_{layer} ON records USING hnsw (embedding {ops})"
            f" WITH (m = {m}, ef_construction = {ef_construction}) WHERE layer = '{layer}'"
        )
    return True
