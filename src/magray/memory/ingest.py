"""Ingest files and folders: walk → chunk → embed → store, incremental by content hash.

A file whose content hash is unchanged since the last ingest (same layer and project) is
skipped without reading its chunks again. A changed file keeps the records of chunks that
did not change (their access history and promotion survive), drops the chunks that are gone
and adds new ones. Files that disappeared from an ingested folder are forgotten. Each batch
of files is written in one transaction together with its bookkeeping row, so an interrupted
ingest leaves whole files only and the next run picks up the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from magray.memory.chunking import Chunk, chunk
from magray.memory.records import Layer, NewRecord, content_hash
from magray.memory.service import Memory, validate
from magray.memory.sources import Skipped, SkipReason, SourceFile, walk
from magray.memory.store import Store

EMBED_BATCH = 256
# Chunk sizes fit a 256-token embedding window (about 3–4 characters a token for code and
# prose), so chunks are embedded whole instead of truncated.
CHUNK_TARGET_CHARS = 700
CHUNK_MAX_CHARS = 1000
CHUNK_OVERLAP_CHARS = 100

Progress = Callable[[int, int | None], None]


@dataclass
class IngestReport:
    files_added: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    chunks_kept: int = 0
    chunks_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)


@dataclass
class _Plan:
    file: SourceFile
    chunks: list[Chunk]
    existed: bool


def _prefix(path: Path, root: Path) -> str | None:
    """The uri prefix of an ingested folder (None when outside the root: absolute uris)."""
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix() + "/"
    return "" if rel == "." else rel + "/"


class Ingestor:
    def __init__(
        self, memory: Memory, *, layer: Layer, project: str | None, root: Path | None
    ) -> None:
        self.memory = memory
        self.store = memory.store
        self.layer = layer
        self.project = project or ""
        self.root = root or Path.cwd()
        self.report = IngestReport()

    def known_hash(self, uri: str) -> str | None:
        row = self.store.conn.execute(
            "SELECT content_hash FROM ingested_sources WHERE uri = ? AND project = ? AND layer = ?",
            (uri, self.project, str(self.layer)),
        ).fetchone()
        return None if row is None else str(row[0])

    def write(self, plans: list[_Plan]) -> None:
        """Embed the new chunks of ``plans`` and store them with their bookkeeping rows."""
        if not plans:
            return
        embedder = self.memory.embedder
        texts = [c.text for p in plans for c in p.chunks]
        vectors = embedder.embed_documents(texts) if texts else np.zeros((0, embedder.dim))
        now = time.time()
        it = iter(vectors)
        with self.store.write() as conn:
            if self.store.meta("embedding_model") is None:
                Store.set_meta(conn, "embedding_model", embedder.model_id)
                Store.set_meta(conn, "embedding_dim", str(embedder.dim))
            for plan in plans:
                uri = plan.file.uri
                keep = {content_hash(c.text) for c in plan.chunks}
                old = conn.execute(
                    "SELECT num, content_hash FROM records WHERE source_uri = ? AND project = ?"
                    " AND layer = ?",
                    (uri, self.project, str(self.layer)),
                ).fetchall()
                gone = [num for num, h in old if h not in keep]
                kept = {h for _, h in old if h in keep}
                conn.executemany("DELETE FROM records WHERE num = ?", [(n,) for n in gone])
                self.report.chunks_removed += len(gone)
                for c in plan.chunks:
                    vec = next(it)
                    h = content_hash(c.text)
                    if h in kept:
                        conn.execute(
                            "UPDATE records SET source_start = ?, source_end = ?,"
                            " source_line_start = ?, source_line_end = ?, updated_at = ?"
                            " WHERE source_uri = ? AND project = ? AND layer = ?"
                            " AND content_hash = ?",
                            (
                                c.source.start,
                                c.source.end,
                                c.source.line_start,
                                c.source.line_end,
                                now,
                                uri,
                                self.project,
                                str(self.layer),
                                h,
                            ),
                        )
                        self.report.chunks_kept += 1
                        continue
                    item = NewRecord(
                        text=c.text,
                        layer=self.layer,
                        kind=plan.file.kind,
                        tags=(plan.file.language,) if plan.file.language else (),
                        project=self.project or None,
                        source=c.source,
                    )
                    Store.insert(
                        conn,
                        item,
                        vector=np.asarray(vec, dtype="<f4").tobytes(),
                        model_id=embedder.model_id,
                        now=now,
                    )
                    self.report.chunks_added += 1
                conn.execute(
                    "INSERT INTO ingested_sources (uri, project, layer, content_hash, chunks,"
                    " ingested_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uri, project, layer)"
                    " DO UPDATE SET content_hash = excluded.content_hash,"
                    " chunks = excluded.chunks, ingested_at = excluded.ingested_at",
                    (
                        uri,
                        self.project,
                        str(self.layer),
                        plan.file.content_hash,
                        len(plan.chunks),
                        now,
                    ),
                )
                if plan.existed:
                    self.report.files_updated += 1
                else:
                    self.report.files_added += 1

    def forget_missing(self, folders: Sequence[Path], seen: set[str]) -> None:
        """Forget files that were ingested from ``folders`` before but are gone now."""
        stale: list[str] = []
        for folder in folders:
            prefix = _prefix(folder, self.root)
            rows = self.store.conn.execute(
                "SELECT uri FROM ingested_sources WHERE project = ? AND layer = ?",
                (self.project, str(self.layer)),
            ).fetchall()
            stale.extend(uri for (uri,) in rows if uri.startswith(prefix or "") and uri not in seen)
        if not stale:
            return
        with self.store.write() as conn:
            for uri in dict.fromkeys(stale):
                cur = conn.execute(
                    "DELETE FROM records WHERE source_uri = ? AND project = ? AND layer = ?",
                    (uri, self.project, str(self.layer)),
                )
                self.report.chunks_removed += cur.rowcount
                conn.execute(
                    "DELETE FROM ingested_sources WHERE uri = ? AND project = ? AND layer = ?",
                    (uri, self.project, str(self.layer)),
                )
                self.report.files_removed += 1


def ingest(
    memory: Memory,
    paths: Sequence[Path],
    *,
    layer: Layer = Layer.ASSETS,
    project: str | None = None,
    root: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files and folders) into ``layer`` of ``memory``."""
    memory.check_model()
    job = Ingestor(memory, layer=layer, project=project, root=root)
    seen: set[str] = set()
    pending: list[_Plan] = []
    pending_chunks = 0
    done = 0
    for item in walk(paths, root=job.root):
        if isinstance(item, Skipped):
            if item.reason is not SkipReason.IGNORED:
                job.report.skipped.append((item.uri, str(item.reason)))
            continue
        seen.add(item.uri)
        known = job.known_hash(item.uri)
        done += 1
        if known == item.content_hash:
            job.report.files_unchanged += 1
            continue
        pieces = chunk(
            item.text,
            kind=item.kind,
            uri=item.uri,
            language=item.language,
            target_chars=CHUNK_TARGET_CHARS,
            max_chars=CHUNK_MAX_CHARS,
            overlap_chars=CHUNK_OVERLAP_CHARS,
        )
        for piece in pieces:
            validate(NewRecord(text=piece.text))
        pending.append(_Plan(file=item, chunks=pieces, existed=known is not None))
        pending_chunks += len(pieces)
        if pending_chunks >= EMBED_BATCH:
            job.write(pending)
            pending, pending_chunks = [], 0
            if progress:
                progress(done, None)
    job.write(pending)
    job.forget_missing([p for p in paths if p.is_dir()], seen)
    if progress:
        progress(done, done)
    return job.report
