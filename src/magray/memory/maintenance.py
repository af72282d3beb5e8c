"""Reindex (rebuild derived indexes, optionally re-embed) and verify a memory store."""

from __future__ import annotations

import json
import shlex
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from magray.memory.records import Layer, content_hash
from magray.memory.service import Memory, Progress
from magray.memory.store import Store

REEMBED_BATCH = 128


def reembed(memory: Memory, progress: Progress | None = None) -> int:
    """Re-embed every record whose vector is not from the active model. Resumable.

    Each batch is its own transaction, so an interrupted run keeps what it finished and a
    second run continues where it stopped. Returns the number of records re-embedded.
    """
    embedder = memory.embedder
    store = memory.store
    todo = int(
        store.conn.execute(
            "SELECT COUNT(*) FROM records WHERE embedding_model IS NOT ? OR vector IS NULL",
            (embedder.model_id,),
        ).fetchone()[0]
    )
    done = 0
    last = 0
    while True:
        rows = store.conn.execute(
            "SELECT num, text FROM records WHERE (embedding_model IS NOT ? OR vector IS NULL)"
            " AND num > ? ORDER BY num LIMIT ?",
            (embedder.model_id, last, REEMBED_BATCH),
        ).fetchall()
        if not rows:
            break
        vectors = embedder.embed_documents([r[1] for r in rows])
        with store.write() as conn:
            conn.executemany(
                "UPDATE records SET vector = ?, embedding_model = ? WHERE num = ?",
                [
                    (np.asarray(v, dtype="<f4").tobytes(), embedder.model_id, r[0])
                    for r, v in zip(rows, vectors, strict=True)
                ],
            )
        done += len(rows)
        last = int(rows[-1][0])
        if progress:
            progress(done, todo)
    with store.write() as conn:
        Store.set_meta(conn, "embedding_model", embedder.model_id)
        Store.set_meta(conn, "embedding_dim", str(embedder.dim))
    return done


def reindex(
    memory: Memory, *, reembed_vectors: bool, progress: Progress | None = None
) -> dict[str, Any]:
    """Rebuild the keyword index and every vector index from the records."""
    reembedded = reembed(memory, progress) if reembed_vectors else 0
    with memory.store.write() as conn:
        conn.execute("INSERT INTO records_fts (records_fts) VALUES ('rebuild')")
    counts: dict[str, int] = {}
    if memory.stored_model[0] is not None:
        indexes = memory.indexes
        indexes.rebuild_all()
        counts = {str(layer): int(h["indexed"]) for layer, h in indexes.health().items()}
    return {"reembedded": reembedded, "indexed": counts}


@dataclass
class VerifyReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    checked: dict[str, Any] = field(default_factory=dict)

    def problem(self, message: str) -> None:
        self.ok = False
        self.problems.append(message)


def verify(memory: Memory) -> VerifyReport:
    """Check the store and its derived indexes without changing anything user-visible."""
    report = VerifyReport()
    conn = memory.store.conn
    integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    report.checked["sqlite_integrity"] = integrity[0] if integrity else "?"
    if integrity != ["ok"]:
        report.problem("SQLite integrity check failed: " + "; ".join(integrity[:3]))
    try:
        conn.execute("INSERT INTO records_fts (records_fts, rank) VALUES ('integrity-check', 1)")
        report.checked["keyword_index"] = "ok"
    except sqlite3.Error as exc:
        report.problem(
            f"keyword index disagrees with records ({exc}); run `magray memory reindex`."
        )
    model, dim = memory.stored_model
    bad_hash = 0
    bad_vec = 0
    other_model = 0
    total = 0
    for text, chash, emb_model, blob in conn.execute(
        "SELECT text, content_hash, embedding_model, vector FROM records"
    ):
        total += 1
        if content_hash(text) != chash:
            bad_hash += 1
        if blob is not None and dim is not None and len(blob) != dim * 4:
            bad_vec += 1
        if blob is not None and emb_model != model:
            other_model += 1
    report.checked["records"] = total
    if bad_hash:
        report.problem(f"{bad_hash} record(s) have a content hash that does not match their text.")
    if bad_vec:
        report.problem(
            f"{bad_vec} vector(s) have the wrong dimension; run `magray memory reindex --reembed`."
        )
    if other_model:
        report.problem(
            f"{other_model} record(s) hold vectors of another model;"
            " run `magray memory reindex --reembed`."
        )
    if model is not None:
        indexes = memory.indexes
        for layer in Layer:
            expected = {
                int(r[0])
                for r in conn.execute(
                    "SELECT num FROM records WHERE layer = ? AND embedding_model = ?"
                    " AND vector IS NOT NULL",
                    (str(layer), model),
                )
            }
            state = indexes._open(layer)
            live = set(state.index.labels().tolist()) - state.pending_gone
            live |= set(state.pending_labels.tolist())
            report.checked[f"index_{layer}"] = {"expected": len(expected), "found": len(live)}
            if live != expected:
                missing = len(expected - live)
                extra = len(live - expected)
                report.problem(
                    f"the {layer} vector index misses {missing} and has {extra} extra vector(s);"
                    " run `magray memory reindex`."
                )
    _check_sources(conn, report)
    report.checked["meta"] = json.dumps({"model": model, "dim": dim})
    return report


def _check_sources(conn: sqlite3.Connection, report: VerifyReport) -> None:
    """Ingested files whose chunks are gone from the store while the files are unchanged.

    Relative paths (stores from before sources were absolute) are looked up from the
    current folder and counted in ``checked["relative_sources"]``.
    """
    from magray.memory.ingest import is_absolute_uri, lost_chunks
    from magray.memory.sources import SourceFile, read_source

    lost: list[tuple[str, str, str]] = []
    relative = 0
    rows = conn.execute(
        "SELECT uri, project, layer, content_hash, chunks FROM ingested_sources ORDER BY uri"
    ).fetchall()
    for uri, project, layer, chash, chunks in rows:
        if not is_absolute_uri(uri):
            relative += 1
        path = Path(uri)
        if not path.is_file():
            continue
        file = read_source(path, uri=uri)
        if not isinstance(file, SourceFile) or file.content_hash != chash:
            continue  # changed since: the next ingest of its folder updates it anyway
        if lost_chunks(conn, file, uri, layer=layer, project=project, chunks=int(chunks)):
            lost.append((str(path.resolve()), str(layer), str(project)))
    report.checked["sources"] = len(rows)
    report.checked["relative_sources"] = relative
    if lost:
        where, layer, project = lost[0]
        command = f"magray ingest {shlex.quote(where)} --layer {layer}"
        if project:
            command += f" --project {shlex.quote(project)}"
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        report.problem(
            f"{len(lost)} ingested file(s) lost their memories while the files still exist"
            f" ({where}{more}); ingest them again to restore them, e.g. `{command}`."
        )
