"""Ingest files and folders: walk → chunk → embed → store, incremental by content hash.

Sources are stored by their absolute, resolved path, so the folder an ingest runs from and
the way a folder is reached (``ingest proj`` from its parent, ``ingest .`` inside it, a
symbolic link) never change which file a record belongs to.

A file whose content hash is unchanged since the last ingest (same layer and project) is
skipped without reading its chunks again, unless some of its chunks are no longer in the
store (then they are restored). A changed file keeps the records of chunks that did not
change (their access history and promotion survive), drops the chunks that are gone and
adds new ones. A file is forgotten only when it was ingested from under a folder this
ingest walked (or was named itself) and is no longer found there; an unreadable file or
folder keeps its records. Each batch of files is written in one transaction together with
its bookkeeping row, so an interrupted ingest leaves whole files only and the next run picks
up the rest.

Stores written before sources were absolute hold paths relative to the folder each ingest
ran from. When an ingest walks a file that such a relative path names (relative to the
current folder) and the file's content hash is the one recorded, the path is rewritten to
the absolute one; other relative paths are left alone (``memory verify`` counts them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from magray.errors import UsageError
from magray.hashing import content_hash
from magray.memory.backends.base import Backend, SourceChunk, SourceWrite
from magray.memory.ingest.chunking import Chunk, chunk
from magray.memory.ingest.remember import validate
from magray.memory.ingest.sources import Skipped, SkipReason, SourceFile, walk
from magray.memory.records import Layer, NewRecord, check_label
from magray.memory.service import Memory

EMBED_BATCH = 256
# Chunk sizes fit a 256-token embedding window (about 3–4 characters a token for code and
# prose), so chunks are embedded whole instead of truncated.
CHUNK_TARGET_CHARS = 700
CHUNK_MAX_CHARS = 1000
CHUNK_OVERLAP_CHARS = 100
#: Recorded with each ingested file's content hash: a file ingested by another version of the
#: chunker counts as changed, so the next ingest chunks it again (records of chunks whose text
#: is the same are kept). Version 1 recorded the bare hash; 2 stores each chunk's lead (its
#: heading path, an open table's header rows, an open fence's opening line) before its text.
CHUNKER_VERSION = 2

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
    removed: list[str] = field(default_factory=list)  # stored paths of the forgotten files
    restored: list[str] = field(default_factory=list)  # unchanged files whose chunks came back


@dataclass
class _Plan:
    file: SourceFile
    key: str
    chunks: list[Chunk]
    existed: bool


_KEPT_WHEN_SKIPPED = frozenset(
    {SkipReason.UNREADABLE, SkipReason.LINK_LOOP, SkipReason.NOT_REGULAR}
)
"""Reasons that may pass (permissions, a link being replaced): keep what was stored.

A broken link is not one: links are followed only to targets inside the folders walked,
so a missing target is a deleted file, forgotten like any other.
"""


def source_key(path: Path) -> str:
    """The stored uri of a file: its absolute path with symbolic links resolved."""
    return Path(os.path.realpath(path)).as_posix()


def is_absolute_uri(uri: str) -> bool:
    """Whether a stored source uri is an absolute path (older stores hold relative ones)."""
    return PurePosixPath(uri).is_absolute() or PureWindowsPath(uri).is_absolute()


def recorded_hash(file_hash: str) -> str:
    """What ingest records for a file whose content hash is ``file_hash``."""
    return f"{file_hash}+chunker{CHUNKER_VERSION}"


def file_hash_of(recorded: str) -> str:
    """The file's content hash in a recorded one, whichever chunker version recorded it."""
    return recorded.split("+", 1)[0]


def _folder_prefix(folder: Path) -> str:
    key = source_key(folder)
    return key if key.endswith("/") else key + "/"


def chunks_of(file: SourceFile, key: str) -> list[Chunk]:
    """The chunks ``ingest`` makes of ``file``, each recorded under ``key``."""
    return chunk(
        file.text,
        kind=file.kind,
        uri=key,
        language=file.language,
        target_chars=CHUNK_TARGET_CHARS,
        max_chars=CHUNK_MAX_CHARS,
        overlap_chars=CHUNK_OVERLAP_CHARS,
    )


def lost_chunks(
    backend: Backend, file: SourceFile, key: str, *, layer: Layer, project: str, chunks: int
) -> bool:
    """Whether chunks recorded for ``file`` at its last ingest are missing from the store.

    Cheap when nothing is lost (one count); otherwise the file is chunked again and each
    chunk looked up by content, so chunks shared with another file do not count as lost.
    """
    if backend.source_chunk_count(key, project, layer) >= chunks:
        return False
    hashes = {content_hash(piece.stored_text) for piece in chunks_of(file, key)}
    return bool(hashes - backend.stored_hashes(layer, project, hashes))


class Ingestor:
    def __init__(
        self, memory: Memory, *, layer: Layer, project: str | None, root: Path | None
    ) -> None:
        self.memory = memory
        self.backend = memory.backend
        self.layer = layer
        self.project = project or ""
        self.root = root or Path.cwd()
        self.report = IngestReport()
        self._legacy: dict[str, tuple[str, str]] | None = None

    def known(self, key: str, current_hash: str) -> tuple[str, int] | None:
        """(content hash, chunk count) recorded at the file's last ingest, if any."""
        row = self.backend.source(key, self.project, self.layer)
        if row is None and self._adopt_legacy(key, current_hash):
            row = self.backend.source(key, self.project, self.layer)
        return None if row is None else (row.content_hash, row.chunks)

    def _adopt_legacy(self, key: str, current_hash: str) -> bool:
        """Rewrite a relative source path of an older store that names ``key``, if it does.

        The relative path is resolved against ``root``; it is adopted only when the file's
        content hash is the one recorded, so a same-named file of another folder never
        takes over the records of the file that was ingested.
        """
        if self._legacy is None:
            self._legacy = {
                source_key(self.root / row.uri): (row.uri, row.content_hash)
                for row in self.backend.sources(self.project, self.layer)
                if not is_absolute_uri(row.uri)
            }
        old = self._legacy.pop(key, None)
        if old is None:
            return False
        rel, recorded = old
        if current_hash != file_hash_of(recorded):
            return False
        self.backend.rename_source(rel, key, self.project, self.layer)
        return True

    def write(self, plans: list[_Plan]) -> None:
        """Embed the new chunks of ``plans`` and store them with their bookkeeping rows."""
        if not plans:
            return
        embedder = self.memory.embedder
        texts = [c.stored_text for p in plans for c in p.chunks]
        vectors = embedder.embed_documents(texts) if texts else np.zeros((0, embedder.dim))
        it = iter(vectors)
        files: list[SourceWrite] = []
        for plan in plans:
            pieces = []
            for c in plan.chunks:
                item = NewRecord(
                    text=c.stored_text,
                    layer=self.layer,
                    kind=plan.file.kind,
                    tags=(plan.file.language,) if plan.file.language else (),
                    project=self.project or None,
                    source=c.source,
                )
                pieces.append(SourceChunk(item, np.asarray(next(it), dtype="<f4").tobytes()))
            files.append(
                SourceWrite(
                    plan.key,
                    self.project,
                    self.layer,
                    recorded_hash(plan.file.content_hash),
                    pieces,
                )
            )
        result = self.backend.write_sources(
            files, model_id=embedder.model_id, dim=embedder.dim, now=time.time()
        )
        self.report.chunks_added += result.added
        self.report.chunks_kept += result.kept
        self.report.chunks_removed += result.removed
        for plan in plans:
            if plan.existed:
                self.report.files_updated += 1
            else:
                self.report.files_added += 1

    def forget_missing(
        self,
        folders: Iterable[Path],
        named: Iterable[Path],
        seen: set[str],
        keep: Sequence[str],
    ) -> None:
        """Forget files ingested before from under ``folders`` (or ``named``) not ``seen`` now.

        ``keep`` holds the stored paths of unreadable files and folders (a folder's path ends
        with "/"): what was ingested from them stays.
        """
        prefixes = tuple(_folder_prefix(f) for f in folders)
        named_keys = {source_key(p) for p in named}
        stale = [
            row.uri
            for row in self.backend.sources(self.project, self.layer)
            if row.uri not in seen
            and (row.uri in named_keys or row.uri.startswith(prefixes))
            and not any(row.uri == k or (k.endswith("/") and row.uri.startswith(k)) for k in keep)
        ]
        if not stale:
            return
        self.report.chunks_removed += self.backend.forget_sources(stale, self.project, self.layer)
        self.report.files_removed += len(stale)
        self.report.removed.extend(stale)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(uri: str) -> str:
    """A path fit to print: bytes of a name that are not UTF-8 shown as escapes."""
    return uri.encode("utf-8", "backslashreplace").decode("utf-8")


def _plan(job: Ingestor, item: SourceFile, key: str) -> _Plan | None:
    """What to write for one walked file, or None when the store already holds it."""
    known = job.known(key, item.content_hash)
    if known is not None and known[0] == recorded_hash(item.content_hash):
        if not lost_chunks(
            job.backend, item, key, layer=job.layer, project=job.project, chunks=known[1]
        ):
            job.report.files_unchanged += 1
            return None
        job.report.restored.append(key)
    pieces = chunks_of(item, key)
    for piece in pieces:
        validate(NewRecord(text=piece.stored_text))
    return _Plan(file=item, key=key, chunks=pieces, existed=known is not None)


def ingest(
    memory: Memory,
    paths: Sequence[Path],
    *,
    layer: Layer = Layer.ASSETS,
    project: str | None = None,
    root: Path | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest ``paths`` (files and folders) into ``layer`` of ``memory``.

    ``root`` only shapes the paths reported as skipped (relative to it when under it) and
    resolves the relative source paths of older stores; default: the current folder.
    """
    if project is not None:
        check_label(project, "the project")
    memory.check_model()
    job = Ingestor(memory, layer=layer, project=project, root=root)
    seen: set[str] = set()
    keep: list[str] = []
    pending: list[_Plan] = []
    pending_chunks = 0
    done = 0
    items = list(walk(paths, root=job.root))  # walking is cheap: it gives progress a total
    total = sum(1 for item in items if not isinstance(item, Skipped))
    for item in items:
        if isinstance(item, Skipped):
            if item.reason in _KEPT_WHEN_SKIPPED:
                key = source_key(item.path)
                keep.extend((key, key.rstrip("/") + "/"))
            if item.reason is not SkipReason.IGNORED:
                job.report.skipped.append((_shown(item.uri), str(item.reason)))
            continue
        key = source_key(item.path)
        seen.add(key)
        done += 1
        if not _utf8(key):
            job.report.skipped.append((_shown(item.uri), "name is not valid UTF-8"))
            continue
        try:
            plan = _plan(job, item, key)
        except UsageError as exc:
            job.report.skipped.append((_shown(item.uri), exc.message.rstrip(".")))
            keep.append(key)
            continue
        if progress:
            progress(done, total)
        if plan is None:
            continue
        pending.append(plan)
        pending_chunks += len(plan.chunks)
        if pending_chunks >= EMBED_BATCH:
            job.write(pending)
            pending, pending_chunks = [], 0
            if progress:
                progress(done, total)
    job.write(pending)
    folders = [p for p in paths if p.is_dir()]
    job.forget_missing(folders, [p for p in paths if not p.is_dir()], seen, keep)
    if progress:
        progress(done, done)
    return job.report
