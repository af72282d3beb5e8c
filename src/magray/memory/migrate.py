"""Move a store from one backend to another (``magray memory migrate``).

Records stream from the source in batches, each written to the destination in one
transaction with ids, times, stats and vectors kept. A record whose id (or dedup key) the
destination already holds is skipped, so an interrupted migration resumes where it
stopped. Afterwards every record is checked on both sides: counts, and a checksum per
record of its content hash and its vector (rounded to float16, so a ``halfvec``
destination compares equal to its float32 source).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from magray.errors import StoreError
from magray.memory.backends.base import Backend, StoredRow
from magray.memory.records import Record

Progress = Callable[[int, int | None], None]
BATCH = 500


@dataclass
class MigrateReport:
    """What a migration did and found."""

    source: str
    destination: str
    records: int = 0  # in the source
    copied: int = 0
    already_there: int = 0  # skipped: the destination held them (a resumed run)
    verified: int = 0
    mismatched: list[str] = field(default_factory=list)  # ids whose checksums differ
    missing: list[str] = field(default_factory=list)  # ids absent from the destination

    @property
    def ok(self) -> bool:
        return not self.mismatched and not self.missing

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "destination": self.destination,
            "records": self.records,
            "copied": self.copied,
            "already_there": self.already_there,
            "verified": self.verified,
            "mismatched": self.mismatched[:20],
            "missing": self.missing[:20],
            "ok": self.ok,
        }


def checksum(record: Record, vector: bytes | None) -> str:
    """sha256 of the content hash and the float16-rounded vector of one record."""
    digest = hashlib.sha256(record.content_hash.encode("ascii"))
    if vector:
        digest.update(np.frombuffer(vector, dtype="<f4").astype("<f2").tobytes())
    return digest.hexdigest()


def _vectors(backend: Backend, rows: list[StoredRow]) -> dict[int, bytes]:
    return {num: blob for num, (_, blob) in backend.vectors([r.num for r in rows]).items()}


def copy(
    source: Backend, dest: Backend, *, batch: int = BATCH, progress: Progress | None = None
) -> MigrateReport:
    """Copy every record of ``source`` into ``dest`` and verify both sides."""
    report = MigrateReport(source=source.location, destination=dest.location)
    model, dim = source.embedding_model()
    have_model, have_dim = dest.embedding_model()
    if model is not None and have_model is not None and (have_model, have_dim) != (model, dim):
        raise StoreError(
            f"the destination holds {have_dim}-d vectors of {have_model}, the source {dim}-d"
            f" vectors of {model}; migrate into an empty store."
        )
    report.records = source.count()
    done = 0
    pending: list[StoredRow] = []

    def flush() -> None:
        nonlocal done
        vectors = _vectors(source, pending)
        rows = [(r.record, vectors.get(r.num, b"")) for r in pending]
        imported, duplicates = dest.insert_exact(rows, model_id=model or "", dim=dim or 0)
        report.copied += imported
        report.already_there += duplicates
        done += len(pending)
        pending.clear()
        if progress:
            progress(done, report.records)

    for row in source.iter_records(batch=batch):
        pending.append(row)
        if len(pending) >= batch:
            flush()
    if pending:
        flush()
    verify(source, dest, report, batch=batch)
    return report


def verify(source: Backend, dest: Backend, report: MigrateReport, *, batch: int = BATCH) -> None:
    """Compare the checksum of every source record with its copy in ``dest``."""
    expected: dict[str, str] = {}
    pending: list[StoredRow] = []

    def take(rows: list[StoredRow], backend: Backend, into: dict[str, str]) -> None:
        vectors = _vectors(backend, rows)
        for r in rows:
            into[r.record.id] = checksum(r.record, vectors.get(r.num))
        rows.clear()

    for row in source.iter_records(batch=batch):
        pending.append(row)
        if len(pending) >= batch:
            take(pending, source, expected)
    take(pending, source, expected)
    found: dict[str, str] = {}
    for row in dest.iter_records(batch=batch):
        if row.record.id in expected:
            pending.append(row)
        if len(pending) >= batch:
            take(pending, dest, found)
    take(pending, dest, found)
    for rid, digest in expected.items():
        got = found.get(rid)
        if got is None:
            report.missing.append(rid)
        elif got != digest:
            report.mismatched.append(rid)
        else:
            report.verified += 1
