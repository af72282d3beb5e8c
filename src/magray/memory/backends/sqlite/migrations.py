"""Numbered schema migrations of the memory store, recorded in ``schema_migrations``.

Design notes:
- ``records.num`` is an AUTOINCREMENT integer: it labels the record in the vector indexes and
  is never reused, so a stale index entry can never point at a different record.
- ``records_fts`` is an external-content FTS5 table kept in step by triggers, inside the same
  transaction as the record: the keyword index cannot drift from the records.
- ``index_journal`` is written by triggers whenever a record's vector enters or leaves a layer.
  The derived HNSW files remember the journal sequence they reflect and catch up from it.
- ``vector_backlog`` holds the vectors not yet in a saved index file (``vector_backlog.py``).
"""

from __future__ import annotations

import sqlite3

from magray.sqlite_migrations import apply, current_version

__all__ = [
    "ACCESS_STATS_VERSION",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "current_version",
    "migrate",
]

M1_INITIAL = """
        CREATE TABLE records (
            num INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            layer TEXT NOT NULL CHECK (layer IN ('interact', 'insights', 'assets')),
            kind TEXT NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]',
            project TEXT NOT NULL DEFAULT '',
            session TEXT,
            source_uri TEXT,
            source_start INTEGER,
            source_end INTEGER,
            source_line_start INTEGER,
            source_line_end INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            layer_since REAL NOT NULL,
            last_access_at REAL,
            access_count INTEGER NOT NULL DEFAULT 0,
            importance REAL NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
            pinned INTEGER NOT NULL DEFAULT 0,
            promotion_score REAL,
            content_hash TEXT NOT NULL,
            embedding_model TEXT,
            vector BLOB
        );
        CREATE UNIQUE INDEX records_dedup ON records (layer, project, content_hash);
        CREATE INDEX records_layer_created ON records (layer, created_at);
        CREATE INDEX records_source ON records (source_uri);
        CREATE INDEX records_session ON records (session);

        CREATE TABLE record_tags (
            num INTEGER NOT NULL REFERENCES records (num) ON DELETE CASCADE,
            tag TEXT NOT NULL,
            PRIMARY KEY (tag, num)
        ) WITHOUT ROWID;
        CREATE INDEX record_tags_num ON record_tags (num);

        CREATE VIRTUAL TABLE records_fts USING fts5 (
            text,
            content = 'records',
            content_rowid = 'num',
            tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER records_fts_insert AFTER INSERT ON records BEGIN
            INSERT INTO records_fts (rowid, text) VALUES (new.num, new.text);
        END;
        CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text) VALUES ('delete', old.num, old.text);
        END;
        CREATE TRIGGER records_fts_update AFTER UPDATE OF text ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text) VALUES ('delete', old.num, old.text);
            INSERT INTO records_fts (rowid, text) VALUES (new.num, new.text);
        END;

        CREATE TABLE index_journal (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            num INTEGER NOT NULL,
            layer TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('add', 'remove'))
        );
        CREATE INDEX index_journal_layer ON index_journal (layer, seq);
        CREATE TRIGGER records_journal_insert AFTER INSERT ON records
        WHEN new.vector IS NOT NULL BEGIN
            INSERT INTO index_journal (num, layer, op) VALUES (new.num, new.layer, 'add');
        END;
        CREATE TRIGGER records_journal_delete AFTER DELETE ON records
        WHEN old.vector IS NOT NULL BEGIN
            INSERT INTO index_journal (num, layer, op) VALUES (old.num, old.layer, 'remove');
        END;
        CREATE TRIGGER records_journal_update_old AFTER UPDATE OF layer, vector, embedding_model
        ON records WHEN old.vector IS NOT NULL BEGIN
            INSERT INTO index_journal (num, layer, op) VALUES (old.num, old.layer, 'remove');
        END;
        CREATE TRIGGER records_journal_update_new AFTER UPDATE OF layer, vector, embedding_model
        ON records WHEN new.vector IS NOT NULL BEGIN
            INSERT INTO index_journal (num, layer, op) VALUES (new.num, new.layer, 'add');
        END;

        CREATE TABLE access_log (
            num INTEGER NOT NULL REFERENCES records (num) ON DELETE CASCADE,
            at REAL NOT NULL
        );
        CREATE INDEX access_log_num ON access_log (num, at);

        CREATE TABLE ingested_sources (
            uri TEXT NOT NULL,
            project TEXT NOT NULL DEFAULT '',
            layer TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            chunks INTEGER NOT NULL,
            ingested_at REAL NOT NULL,
            PRIMARY KEY (uri, project, layer)
        );

        CREATE TABLE lifecycle_log (
            at REAL NOT NULL,
            record_id TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('promote', 'expire', 'merge')),
            from_layer TEXT NOT NULL,
            to_layer TEXT,
            score REAL,
            reasons TEXT NOT NULL DEFAULT ''
        );

        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Expired records leave their access history behind, so the learned promotion model also
# sees the records that were *not* re-used (otherwise it would learn from survivors only).
M2_HISTORY_ARCHIVE = """
        CREATE TABLE history_archive (
            record_id TEXT PRIMARY KEY,
            layer TEXT NOT NULL,
            created_at REAL NOT NULL,
            layer_since REAL NOT NULL,
            importance REAL NOT NULL,
            pinned INTEGER NOT NULL,
            access_times TEXT NOT NULL,
            archived_at REAL NOT NULL
        );
"""

# When a memory happened, apart from when it was stored (NULL: reads use created_at).
M3_OCCURRED_AT = """
        ALTER TABLE records ADD COLUMN occurred_at REAL;
"""

# The vectors of a layer and model, for the index's count check on every open (without it
# that count reads the whole table: a tenth of a second at 100,000 records).
M4_VECTOR_INDEX = """
        CREATE INDEX IF NOT EXISTS records_layer_vectors ON records (layer, embedding_model)
            WHERE vector IS NOT NULL;
"""

# Smaller indexes, same plans. Most records have no source file or session: partial indexes
# leave those rows out (every lookup by source or session compares the column, which SQLite
# knows implies IS NOT NULL). The journal's (layer, seq) index duplicated its key: backlog
# reads range over seq, the rowid, and keep the layer's entries.
M5_LEAN_INDEXES = """
        DROP INDEX IF EXISTS records_source;
        CREATE INDEX records_source ON records (source_uri) WHERE source_uri IS NOT NULL;
        DROP INDEX IF EXISTS records_session;
        CREATE INDEX records_session ON records (session) WHERE session IS NOT NULL;
        DROP INDEX IF EXISTS index_journal_layer;
"""

# Vectors at rest once: a store whose index file can give its vectors back exactly (f32 and
# f16) writes ``records.vector`` as an empty blob (still NOT NULL: the record has a vector)
# and the vector itself here, until a saved index file holds it (``vector_backlog``).
M6_VECTOR_BACKLOG = """
        CREATE TABLE IF NOT EXISTS vector_backlog (
            num INTEGER PRIMARY KEY REFERENCES records (num) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
"""

# Access statistics in narrow tables of their own. A recall bumps the statistics of every hit:
# kept in ``records`` each bump rewrote the page of a wide row (its text lives there too), so
# one flush of a few thousand accesses wrote as many pages. ``record_stats`` holds the
# counters (a row only once a record was accessed; the old columns are dropped).
# ``access_history`` holds each record's kept access times as one packed array (at most the
# first and the last 32: ``magray.memory.access``), ``access_log`` only the accesses not yet
# folded into it: appended in rowid order, no index, no foreign key, so an append writes the
# last page. The old log becomes that pending log; the store folds it right after migrating
# (``access_stats.fold``: packing is done in Python).
M7_ACCESS_STATS = """
        CREATE TABLE record_stats (
            num INTEGER PRIMARY KEY REFERENCES records (num) ON DELETE CASCADE,
            access_count INTEGER NOT NULL DEFAULT 0,
            last_access_at REAL
        );
        INSERT INTO record_stats (num, access_count, last_access_at)
            SELECT num, access_count, last_access_at FROM records
            WHERE access_count != 0 OR last_access_at IS NOT NULL;
        ALTER TABLE records DROP COLUMN access_count;
        ALTER TABLE records DROP COLUMN last_access_at;

        CREATE TABLE access_history (
            num INTEGER PRIMARY KEY REFERENCES records (num) ON DELETE CASCADE,
            times BLOB NOT NULL
        );
        CREATE TABLE access_pending (num INTEGER NOT NULL, at REAL NOT NULL);
        INSERT INTO access_pending (num, at)
            SELECT num, at FROM access_log ORDER BY rowid;
        DROP TABLE access_log;
        ALTER TABLE access_pending RENAME TO access_log;
"""

# (version, name, SQL script). A script runs inside one transaction with its bookkeeping row.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (1, "initial schema", M1_INITIAL),
    (2, "history archive for promotion learning", M2_HISTORY_ARCHIVE),
    (3, "event time of records", M3_OCCURRED_AT),
    (4, "index of the records holding vectors", M4_VECTOR_INDEX),
    (5, "partial source and session indexes, no journal layer index", M5_LEAN_INDEXES),
    (6, "vectors kept apart until the index file holds them", M6_VECTOR_BACKLOG),
    (7, "access statistics in narrow tables, bounded history", M7_ACCESS_STATS),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
ACCESS_STATS_VERSION = 7  # after it, the store folds the old access log (``access_stats``)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations, each in its own transaction. Returns the versions applied."""
    return apply(conn, MIGRATIONS)
