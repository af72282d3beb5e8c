"""Ingest bookkeeping of the SQLite backend: one row per ingested file, and whole-file
writes of its chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from magray.hashing import content_hash
from magray.memory.backends.base import SourceState, SourceWrite, SourceWriteResult
from magray.memory.backends.sqlite.inserts import insert_many
from magray.memory.backends.sqlite.store import Store
from magray.memory.records import Layer, NewRecord


def sources(store: Store, project: str | None, layer: Layer | None) -> list[SourceState]:
    cond, params = ["1"], []
    if project is not None:
        cond.append("project = ?")
        params.append(project)
    if layer is not None:
        cond.append("layer = ?")
        params.append(str(layer))
    rows = store.conn.execute(
        "SELECT uri, project, layer, content_hash, chunks FROM ingested_sources"
        f" WHERE {' AND '.join(cond)} ORDER BY uri, project, layer",
        params,
    ).fetchall()
    return [SourceState(str(u), str(p), Layer(la), str(h), int(c)) for u, p, la, h, c in rows]


def source(store: Store, uri: str, project: str, layer: Layer) -> SourceState | None:
    row = store.conn.execute(
        "SELECT content_hash, chunks FROM ingested_sources"
        " WHERE uri = ? AND project = ? AND layer = ?",
        (uri, project, str(layer)),
    ).fetchone()
    return None if row is None else SourceState(uri, project, layer, str(row[0]), int(row[1]))


def rename_source(store: Store, old: str, new: str, project: str, layer: Layer) -> None:
    scope = (project, str(layer))
    with store.write() as conn:
        conn.execute(
            "UPDATE records SET source_uri = ? WHERE source_uri = ? AND project = ? AND layer = ?",
            (new, old, *scope),
        )
        conn.execute(
            "UPDATE OR IGNORE ingested_sources SET uri = ? WHERE uri = ? AND project = ?"
            " AND layer = ?",
            (new, old, *scope),
        )
        conn.execute(
            "DELETE FROM ingested_sources WHERE uri = ? AND project = ? AND layer = ?",
            (old, *scope),
        )


def write_sources(
    store: Store,
    files: Sequence[SourceWrite],
    *,
    model_id: str,
    dim: int,
    now: float,
    apart: str | None = None,
) -> SourceWriteResult:
    result = SourceWriteResult()
    with store.write() as conn:
        if store.meta("embedding_model") is None:
            Store.set_meta(conn, "embedding_model", model_id)
            Store.set_meta(conn, "embedding_dim", str(dim))
        for file in files:
            scope = (file.uri, file.project, str(file.layer))
            keep = {content_hash(c.item.text) for c in file.chunks}
            old = conn.execute(
                "SELECT num, content_hash FROM records WHERE source_uri = ? AND project = ?"
                " AND layer = ?",
                scope,
            ).fetchall()
            gone = [num for num, h in old if h not in keep]
            kept = {h for _, h in old if h in keep}
            conn.executemany("DELETE FROM records WHERE num = ?", [(n,) for n in gone])
            result.removed += len(gone)
            new: list[tuple[NewRecord, bytes | None]] = []
            for c in file.chunks:
                h = content_hash(c.item.text)
                if h in kept:
                    src = c.item.source
                    conn.execute(
                        "UPDATE records SET source_start = ?, source_end = ?,"
                        " source_line_start = ?, source_line_end = ?, updated_at = ?"
                        " WHERE source_uri = ? AND project = ? AND layer = ? AND content_hash = ?",
                        (
                            src.start if src else None,
                            src.end if src else None,
                            src.line_start if src else None,
                            src.line_end if src else None,
                            now,
                            *scope,
                            h,
                        ),
                    )
                    result.kept += 1
                    continue
                new.append((c.item, c.vector))
            insert_many(conn, new, model_id=model_id, now=now, apart=apart)
            result.added += len(new)
            conn.execute(
                "INSERT INTO ingested_sources (uri, project, layer, content_hash, chunks,"
                " ingested_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uri, project, layer)"
                " DO UPDATE SET content_hash = excluded.content_hash,"
                " chunks = excluded.chunks, ingested_at = excluded.ingested_at",
                (*scope, file.content_hash, len(file.chunks), now),
            )
    return result


def forget_sources(store: Store, uris: Sequence[str], project: str, layer: Layer) -> int:
    removed = 0
    with store.write() as conn:
        for uri in uris:
            cur = conn.execute(
                "DELETE FROM records WHERE source_uri = ? AND project = ? AND layer = ?",
                (uri, project, str(layer)),
            )
            removed += cur.rowcount
            conn.execute(
                "DELETE FROM ingested_sources WHERE uri = ? AND project = ? AND layer = ?",
                (uri, project, str(layer)),
            )
    return removed


def source_chunk_count(store: Store, uri: str, project: str, layer: Layer) -> int:
    (have,) = store.conn.execute(
        "SELECT COUNT(*) FROM records WHERE source_uri = ? AND project = ? AND layer = ?",
        (uri, project, str(layer)),
    ).fetchone()
    return int(have)


def stored_hashes(store: Store, layer: Layer, project: str, hashes: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        found.update(
            str(h)
            for (h,) in store.conn.execute(
                "SELECT content_hash FROM records WHERE layer = ? AND project = ?"
                f" AND content_hash IN ({','.join('?' * len(chunk))})",
                [str(layer), project, *chunk],
            )
        )
    return found
