"""Ingest bookkeeping of the PostgreSQL backend: which files were stored, and writing,
renaming and forgetting whole files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from magray.hashing import content_hash
from magray.memory.backends.base import SourceState, SourceWrite, SourceWriteResult
from magray.memory.backends.postgres.core import Core
from magray.memory.backends.postgres.records import insert_many
from magray.memory.records import Layer, NewRecord


class SourcesMixin(Core):
    def sources(self, project: str | None = None, layer: Layer | None = None) -> list[SourceState]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT uri, project, layer, content_hash, chunks FROM ingested_sources"
                " WHERE (%s::text IS NULL OR project = %s) AND (%s::text IS NULL OR layer = %s)"
                " ORDER BY uri",
                (
                    project,
                    project,
                    None if layer is None else str(layer),
                    None if layer is None else str(layer),
                ),
            ).fetchall()
        return [SourceState(str(u), str(p), Layer(lay), str(h), int(c)) for u, p, lay, h, c in rows]

    def source(self, uri: str, project: str, layer: Layer) -> SourceState | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT content_hash, chunks FROM ingested_sources"
                " WHERE uri = %s AND project = %s AND layer = %s",
                (uri, project, str(layer)),
            ).fetchone()
        return None if row is None else SourceState(uri, project, layer, str(row[0]), int(row[1]))

    def rename_source(self, old_uri: str, new_uri: str, project: str, layer: Layer) -> None:
        scope = (project, str(layer))
        with self._write() as conn:
            conn.execute(
                "UPDATE records SET source_uri = %s WHERE source_uri = %s AND project = %s"
                " AND layer = %s",
                (new_uri, old_uri, *scope),
            )
            taken = conn.execute(
                "SELECT 1 FROM ingested_sources WHERE uri = %s AND project = %s AND layer = %s",
                (new_uri, *scope),
            ).fetchone()
            if taken is None:
                conn.execute(
                    "UPDATE ingested_sources SET uri = %s WHERE uri = %s AND project = %s"
                    " AND layer = %s",
                    (new_uri, old_uri, *scope),
                )
            else:
                conn.execute(
                    "DELETE FROM ingested_sources WHERE uri = %s AND project = %s AND layer = %s",
                    (old_uri, *scope),
                )

    def write_sources(
        self, files: Sequence[SourceWrite], *, model_id: str, dim: int, now: float
    ) -> SourceWriteResult:
        result = SourceWriteResult()
        if not files:
            return result
        with self._write() as conn:
            self._ensure_model(conn, model_id, dim)
            for f in files:
                scope = (f.uri, f.project, str(f.layer))
                keep = {content_hash(c.item.text) for c in f.chunks}
                old = conn.execute(
                    "SELECT num, content_hash FROM records WHERE source_uri = %s"
                    " AND project = %s AND layer = %s",
                    scope,
                ).fetchall()
                gone = [int(n) for n, h in old if h not in keep]
                kept = {str(h) for _, h in old if h in keep}
                if gone:
                    conn.execute("DELETE FROM records WHERE num = ANY(%s)", (gone,))
                result.removed += len(gone)
                new: list[tuple[NewRecord, bytes]] = []
                for chunk in f.chunks:
                    h = content_hash(chunk.item.text)
                    src = chunk.item.source
                    if h in kept and src is not None:
                        conn.execute(
                            "UPDATE records SET source_start = %s, source_end = %s,"
                            " source_line_start = %s, source_line_end = %s, updated_at = %s"
                            " WHERE source_uri = %s AND project = %s AND layer = %s"
                            " AND content_hash = %s",
                            (src.start, src.end, src.line_start, src.line_end, now, *scope, h),
                        )
                        result.kept += 1
                        continue
                    new.append((chunk.item, chunk.vector))
                    result.added += 1
                insert_many(conn, new, model_id, now)
                conn.execute(
                    "INSERT INTO ingested_sources (uri, project, layer, content_hash, chunks,"
                    " ingested_at) VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (uri, project, layer) DO UPDATE SET"
                    " content_hash = excluded.content_hash, chunks = excluded.chunks,"
                    " ingested_at = excluded.ingested_at",
                    (*scope, f.content_hash, len(f.chunks), now),
                )
        return result

    def forget_sources(self, uris: Sequence[str], project: str, layer: Layer) -> int:
        if not uris:
            return 0
        with self._write() as conn:
            cur = conn.execute(
                "DELETE FROM records WHERE source_uri = ANY(%s) AND project = %s AND layer = %s",
                (list(uris), project, str(layer)),
            )
            deleted = int(cur.rowcount)
            conn.execute(
                "DELETE FROM ingested_sources WHERE uri = ANY(%s) AND project = %s AND layer = %s",
                (list(uris), project, str(layer)),
            )
        return deleted

    def source_chunk_count(self, uri: str, project: str, layer: Layer) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM records WHERE source_uri = %s AND project = %s"
                " AND layer = %s",
                (uri, project, str(layer)),
            ).fetchone()
        return int(row[0]) if row else 0

    def stored_hashes(self, layer: Layer, project: str, hashes: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(hashes))
        if not wanted:
            return set()
        with self._read() as conn:
            rows = conn.execute(
                "SELECT content_hash FROM records WHERE layer = %s AND project = %s"
                " AND content_hash = ANY(%s)",
                (str(layer), project, wanted),
            ).fetchall()
        return {str(h) for (h,) in rows}
