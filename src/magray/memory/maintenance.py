"""Reindex (rebuild derived indexes, optionally re-embed) and verify a memory store."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from magray.memory.service import Memory, Progress

REEMBED_BATCH = 128


def reembed(memory: Memory, progress: Progress | None = None) -> int:
    """Re-embed every record whose vector is not from the active model. Resumable.

    Each batch is its own transaction, so an interrupted run keeps what it finished and a
    second run continues where it stopped. Returns the number of records re-embedded.
    """
    embedder = memory.embedder
    backend = memory.backend
    todo = backend.count_stale_vectors(embedder.model_id)
    done = 0
    last = 0
    while rows := backend.stale_vectors(embedder.model_id, after=last, limit=REEMBED_BATCH):
        vectors = embedder.embed_documents([text for _, text in rows])
        backend.set_vectors(
            [
                (num, np.asarray(v, dtype="<f4").tobytes())
                for (num, _), v in zip(rows, vectors, strict=True)
            ],
            embedder.model_id,
        )
        done += len(rows)
        last = rows[-1][0]
        if progress:
            progress(done, todo)
    backend.set_embedding_model(embedder.model_id, embedder.dim)
    return done


def reindex(
    memory: Memory, *, reembed_vectors: bool, progress: Progress | None = None
) -> dict[str, Any]:
    """Rebuild the keyword index and every vector index from the records."""
    reembedded = reembed(memory, progress) if reembed_vectors else 0
    if memory.stored_model[0] is not None:
        memory.check_model()
    counts = {str(layer): n for layer, n in memory.backend.rebuild_indexes().items()}
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
    if memory.stored_model[0] is not None:
        memory.check_model()  # the indexes are those of the active model
    found = memory.backend.verify()
    meta = found.checked.pop("meta", None)
    report.checked.update(found.checked)
    for problem in found.problems:
        report.problem(problem)
    _check_sources(memory, report)
    if meta is not None:
        report.checked["meta"] = meta
    return report


def _check_sources(memory: Memory, report: VerifyReport) -> None:
    """Ingested files whose chunks are gone from the store while the files are unchanged.

    Relative paths (stores from before sources were absolute) are looked up from the
    current folder and counted in ``checked["relative_sources"]``.
    """
    from magray.memory.ingest.pipeline import is_absolute_uri, lost_chunks, recorded_hash
    from magray.memory.ingest.sources import SourceFile, read_source

    lost: list[tuple[str, str, str]] = []
    relative = 0
    rows = memory.backend.sources()
    for row in rows:
        uri, project, layer = row.uri, row.project, row.layer
        if not is_absolute_uri(uri):
            relative += 1
        path = Path(uri)
        if not path.is_file():
            continue
        file = read_source(path, uri=uri)
        if not isinstance(file, SourceFile) or recorded_hash(file.content_hash) != row.content_hash:
            continue  # changed since (or chunked by another version): the next ingest updates it
        if lost_chunks(memory.backend, file, uri, layer=layer, project=project, chunks=row.chunks):
            lost.append((str(path.resolve()), str(layer), str(project)))
    report.checked["sources"] = len(rows)
    report.checked["relative_sources"] = relative
    if lost:
        first, first_layer, first_project = lost[0]
        command = f"magray ingest {shlex.quote(first)} --layer {first_layer}"
        if first_project:
            command += f" --project {shlex.quote(first_project)}"
        more = f" and {len(lost) - 1} more" if len(lost) > 1 else ""
        report.problem(
            f"{len(lost)} ingested file(s) lost their memories while the files still exist"
            f" ({first}{more}); ingest them again to restore them, e.g. `{command}`."
        )
