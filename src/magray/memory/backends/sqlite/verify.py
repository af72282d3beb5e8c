"""Integrity checks of the SQLite backend: the database, FTS5, hashes, vectors, indexes."""

from __future__ import annotations

import json
import sqlite3

from magray.hashing import content_hash
from magray.memory.backends.base import StoreCheck
from magray.memory.backends.sqlite.index_sync import IndexSet
from magray.memory.backends.sqlite.store import Store
from magray.memory.backends.sqlite.vector_backlog import APART, VECTOR_SQL
from magray.memory.backends.sqlite.vector_codec import dimension
from magray.memory.records import Layer


def verify(store: Store, indexes: IndexSet | None) -> StoreCheck:
    """Check ``store`` and (when the store holds vectors) its vector ``indexes``."""
    report = StoreCheck()
    conn = store.conn
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    report.checked["sqlite_integrity"] = integrity[0] if integrity else "?"
    if integrity != ["ok"]:
        report.problems.append("SQLite integrity check failed: " + "; ".join(integrity[:3]))
    try:
        conn.execute("INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)")
        report.checked["keyword_index"] = "ok"
    except sqlite3.Error as exc:
        report.problems.append(
            f"keyword index disagrees with records ({exc}); run `magray memory reindex`."
        )
    model = store.meta("embedding_model")
    raw_dim = store.meta("embedding_dim")
    dim = int(raw_dim) if raw_dim else None
    bad_hash = bad_vec = other_model = total = 0
    for text, chash, emb_model, blob in conn.execute(
        f"SELECT r.text, r.content_hash, r.embedding_model, {VECTOR_SQL} FROM records r"
    ):
        total += 1
        if content_hash(text) != chash:
            bad_hash += 1
        apart = blob == APART  # in the index file, whose dimension is checked on open
        if blob is not None and not apart and dim is not None and dimension(blob) != dim:
            bad_vec += 1
        if blob is not None and emb_model != model:
            other_model += 1
    report.checked["records"] = total
    if bad_hash:
        report.problems.append(
            f"{bad_hash} record(s) have a content hash that does not match their text."
        )
    if bad_vec:
        report.problems.append(
            f"{bad_vec} vector(s) have the wrong dimension; run `magray memory reindex --reembed`."
        )
    if other_model:
        report.problems.append(
            f"{other_model} record(s) hold vectors of another model;"
            " run `magray memory reindex --reembed`."
        )
    if model is not None and indexes is not None:
        _check_indexes(store, indexes, model, report)
    report.checked["meta"] = json.dumps({"model": model, "dim": dim})
    return report


def _check_indexes(store: Store, indexes: IndexSet, model: str, report: StoreCheck) -> None:
    for layer in Layer:
        expected = {
            int(r[0])
            for r in store.conn.execute(
                "SELECT num FROM records WHERE layer = ? AND embedding_model = ?"
                " AND vector IS NOT NULL",
                (str(layer), model),
            )
        }
        live = indexes.live_labels(layer)
        report.checked[f"index_{layer}"] = {"expected": len(expected), "found": len(live)}
        if live != expected:
            missing = len(expected - live)
            extra = len(live - expected)
            report.problems.append(
                f"the {layer} vector index misses {missing} and has {extra} extra vector(s);"
                " run `magray memory reindex`."
            )
