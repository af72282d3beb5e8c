"""Export and import memories as JSON Lines.

The first line is a header, ``{"magray_export": 1, "schema": N, "model": ..., "dim": ...}``;
each following line is one record with every field of ``Record`` (timestamps as unix
seconds, so an export imported elsewhere round-trips exactly) and, with vectors,
``"vector"`` (base64 of little-endian float32) plus ``"dim"``.

Import validates every line before it writes anything; a line longer than
``MAX_LINE_CHARS`` is a bad line without being parsed. Valid lines are spooled to a
temporary file, vectors of other models (or missing ones) are embedded outside the writer
lock, then the whole file is inserted in ONE transaction: an import is all or nothing.
Records keep their ids, timestamps and access statistics. A record whose id already exists,
or whose text already exists in the same layer and project, is skipped as a duplicate.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

import numpy as np

from magray.errors import BackupError, UsageError
from magray.memory.backends.base import Backend, StoredRow
from magray.memory.records import MAX_TEXT_CHARS, Filters, Layer
from magray.memory.service import Memory, Progress
from magray.memory.transfer.lines import InvalidLine, normalise, record_line, to_record

EXPORT_FORMAT = 1
RECORD_SCHEMA = 2  # the "schema" of the header: the record fields this MAGRAY writes
BATCH = 256
MAX_LINE_CHARS = 8 * MAX_TEXT_CHARS  # room for the longest text, JSON escapes and a vector
_MAX_LISTED = 5


# -- export -------------------------------------------------------------------------------
def _batches(rows: Iterator[StoredRow], size: int) -> Iterator[list[StoredRow]]:
    batch: list[StoredRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def export(
    memory: Memory,
    out: TextIO,
    *,
    filters: Filters | None = None,
    with_vectors: bool = False,
    progress: Progress | None = None,
) -> int:
    """Write the records matching ``filters`` to ``out`` as JSONL; returns how many.

    Streams in batches (``Backend.iter_records``): memory use does not grow with the store.
    """
    backend = memory.backend
    filters = filters or Filters()
    model, dim = memory.stored_model
    header = {"magray_export": EXPORT_FORMAT, "schema": RECORD_SCHEMA, "model": model, "dim": dim}
    out.write(json.dumps(header) + "\n")
    total = backend.count(filters)
    done = 0
    for batch in _batches(backend.iter_records(filters), BATCH):
        vectors = backend.vectors([row.num for row in batch]) if with_vectors else {}
        for row in batch:
            blob = vectors.get(row.num)
            line = record_line(row, blob[1] if blob else None)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        done += len(batch)
        if progress:
            progress(done, total)
    out.flush()
    return done


# -- validation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    error: str


@dataclass
class ImportReport:
    """What an import did."""

    imported: int = 0
    duplicates: int = 0
    embedded: int = 0
    skipped_bad: list[BadLine] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "duplicates": self.duplicates,
            "embedded": self.embedded,
            "skipped_bad": [{"line": b.line, "error": b.error} for b in self.skipped_bad],
        }


def _lines(src: TextIO) -> Iterator[tuple[int, str | None]]:
    """(number, text) of each line of ``src``; None for a line over ``MAX_LINE_CHARS``."""
    lineno = 0
    while line := src.readline(MAX_LINE_CHARS + 1):
        lineno += 1
        if len(line) <= MAX_LINE_CHARS or line.endswith("\n"):
            yield lineno, line
            continue
        while (rest := src.readline(1 << 20)) and not rest.endswith("\n"):
            pass  # skip the rest of the long line without keeping it
        yield lineno, None


def _parse(raw: str | None) -> Any:
    if raw is None:
        raise InvalidLine(f"the line is longer than {MAX_LINE_CHARS:,} characters")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidLine(f"invalid JSON ({exc.args[0] if exc.args else exc})") from None
    except RecursionError:
        raise InvalidLine("invalid JSON (nested too deeply)") from None


def _validate(src: TextIO, spool: IO[str], model_id: str, dim: int, report: ImportReport) -> int:
    """Check every line of ``src``; valid records go to ``spool``. Returns how many."""
    now = time.time()
    valid = 0
    first = True
    seen = False
    for lineno, raw in _lines(src):
        if raw is not None and not raw.strip():
            continue
        seen = True
        try:
            obj = _parse(raw)
            if first and isinstance(obj, dict) and "magray_export" in obj:
                first = False
                version = obj["magray_export"]
                if not isinstance(version, int) or version > EXPORT_FORMAT:
                    raise InvalidLine(f"export format {version!r} is newer than this MAGRAY reads")
                continue
            first = False
            rec = normalise(obj, model_id, dim, now)
        except InvalidLine as exc:
            report.skipped_bad.append(BadLine(lineno, str(exc)))
            continue
        spool.write(json.dumps(rec, ensure_ascii=False) + "\n")
        valid += 1
    if not seen:  # no header, no line at all: not an export (an empty store's has a header)
        raise UsageError(
            "the input is empty (no header line, no memory); give the .jsonl file"
            " `magray memory export` wrote."
        )
    return valid


def _refuse(report: ImportReport, valid: int) -> BackupError:
    bad = report.skipped_bad
    if not valid and all(b.error.startswith("invalid JSON") for b in bad):
        # not one line is JSON: the wrong file, not a few damaged lines
        return BackupError(
            f"the input is not JSON Lines (line {bad[0].line}: {bad[0].error}), so nothing was"
            " imported; give the .jsonl file `magray memory export` wrote."
        )
    listed = "; ".join(f"line {b.line}: {b.error}" for b in report.skipped_bad[:_MAX_LISTED])
    more = len(report.skipped_bad) - _MAX_LISTED
    tail = f"; and {more} more" if more > 0 else ""
    return BackupError(
        f"{len(report.skipped_bad)} bad line(s), nothing was imported ({listed}{tail});"
        " fix them or pass --skip-bad to import the rest."
    )


# -- import -------------------------------------------------------------------------------
def _read_batches(spool: IO[str], size: int) -> Iterator[list[dict[str, Any]]]:
    spool.seek(0)
    batch: list[dict[str, Any]] = []
    for line in spool:
        batch.append(json.loads(line))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _exists(backend: Backend, rec: dict[str, Any]) -> bool:
    layer = Layer(rec["layer"])
    return backend.is_duplicate(rec["id"], layer, rec["project"], rec["content_hash"])


def import_(
    memory: Memory,
    src: TextIO,
    *,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import JSONL records from ``src`` (an ``export`` file or hand-written lines).

    Raises:
        UsageError: ``src`` holds nothing but blank lines.
        BackupError: some lines are invalid and ``skip_bad`` is not set (nothing imported);
            the message names each bad line's number and reason.
        DimensionMismatchError: the store holds vectors of another model.
    """
    memory.check_model()
    embedder = memory.embedder
    model_id, dim = embedder.model_id, embedder.dim
    report = ImportReport()
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as valid,
        tempfile.TemporaryFile("w+", encoding="utf-8") as ready,
    ):
        total = _validate(src, valid, model_id, dim, report)
        if report.skipped_bad and not skip_bad:
            raise _refuse(report, total)
        done = 0
        backend = memory.backend
        for batch in _read_batches(valid, BATCH):  # embed outside the writer lock
            fresh = [r for r in batch if not _exists(backend, r)]
            report.duplicates += len(batch) - len(fresh)
            todo = [r for r in fresh if r["vector"] is None or r["embedding_model"] != model_id]
            if todo:
                vectors = embedder.embed_documents([r["text"] for r in todo])
                for rec, vec in zip(todo, vectors, strict=True):
                    blob = np.asarray(vec, dtype="<f4").tobytes()
                    rec["vector"] = base64.b64encode(blob).decode("ascii")
                report.embedded += len(todo)
            for rec in fresh:
                ready.write(json.dumps(rec, ensure_ascii=False) + "\n")
            done += len(batch)
            if progress:
                progress(done, total)
        rows = (
            (to_record(rec, model_id), base64.b64decode(rec["vector"]))
            for batch in _read_batches(ready, BATCH)
            for rec in batch
        )
        imported, duplicates = backend.insert_exact(rows, model_id=model_id, dim=dim)
        report.imported += imported
        report.duplicates += duplicates
    return report
