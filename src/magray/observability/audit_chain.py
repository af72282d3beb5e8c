"""The audit chain: an append-only, hash-chained log of every mutating and every denied call.

Each entry carries the SHA-256 of the entry before it, and its own hash covers its sequence
number, its fields and that previous hash. :meth:`AuditChain.verify` recomputes the chain
and names the first entry that was edited, deleted or moved. The head (the last sequence
number and hash) is kept in a second table written in the same transaction, so dropping
entries from the end is detected as well.

Appends run in one ``BEGIN IMMEDIATE`` transaction (read the head, write the entry, move the
head), so several server workers and the CLI share one chain safely.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.paths import DATABASE_FILES
from magray.sqlite_migrations import opened

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain (
    seq       INTEGER PRIMARY KEY,
    ts        REAL    NOT NULL,
    tenant    TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS head (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
"""
# The first schema was created without bookkeeping; ``IF NOT EXISTS`` adopts it.
MIGRATIONS = [(1, "audit chain", _SCHEMA)]


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit entry."""

    seq: int
    ts: float
    tenant: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: str
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        from magray.views import iso

        return {
            "seq": self.seq,
            "at": iso(self.ts),
            "ts": self.ts,
            "tenant": self.tenant,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "detail": self.detail,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``ok``, how many entries were checked, and the first bad entry with the reason."""

    ok: bool
    checked: int
    first_bad: int | None = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad": self.first_bad,
            "reason": self.reason,
        }


def entry_hash(
    seq: int,
    ts: float,
    tenant: str,
    actor: str,
    action: str,
    target: str,
    outcome: str,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON of an entry's fields and the previous hash."""
    blob = json.dumps(
        [seq, repr(ts), tenant, actor, action, target, outcome, detail, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def chain_file(data_dir: Path) -> Path:
    """Where the chain of a home lives."""
    return data_dir / DATABASE_FILES["audit_chain"]


class AuditChain:
    """Appends to and reads the chain; opens the database per call (safe across processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return opened(self.path, migrations=MIGRATIONS, what="the audit chain")

    def append(
        self,
        *,
        tenant: str,
        actor: str,
        action: str,
        target: str = "",
        outcome: str = "ok",
        detail: str = "",
        ts: float | None = None,
    ) -> Entry:
        """Append one entry after the current head and return it."""
        when = time.time() if ts is None else ts
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT seq, hash FROM head WHERE one = 1").fetchone()
                seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
                digest = entry_hash(seq, when, tenant, actor, action, target, outcome, detail, prev)
                conn.execute(
                    "INSERT INTO chain VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seq, when, tenant, actor, action, target, outcome, detail, prev, digest),
                )
                conn.execute(
                    "INSERT INTO head (one, seq, hash) VALUES (1, ?, ?)"
                    " ON CONFLICT(one) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
                    (seq, digest),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Entry(seq, when, tenant, actor, action, target, outcome, detail, prev, digest)

    def entries(self, *, tenant: str | None = None, limit: int | None = None) -> list[Entry]:
        """Entries oldest first (the newest ``limit`` of them when given)."""
        if not self.path.exists():
            return []
        sql = "SELECT * FROM chain"
        args: list[Any] = []
        if tenant is not None:
            sql += " WHERE tenant = ?"
            args.append(tenant)
        sql += " ORDER BY seq DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [Entry(*row) for row in reversed(rows)]

    def verify(self) -> VerifyResult:
        """Recompute the chain; the first entry that does not fit is named with the reason."""
        if not self.path.exists():
            return VerifyResult(ok=True, checked=0)
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM chain ORDER BY rowid").fetchall()
            head = conn.execute("SELECT seq, hash FROM head WHERE one = 1").fetchone()
        prev, expected_seq, checked = GENESIS, 1, 0
        for row in rows:
            e = Entry(*row)
            if e.seq != expected_seq:
                what = "missing (deleted)" if e.seq > expected_seq else "out of order"
                bad = expected_seq if e.seq > expected_seq else e.seq
                return VerifyResult(False, checked, bad, f"entry {expected_seq} is {what}")
            if e.prev_hash != prev:
                return VerifyResult(
                    False, checked, e.seq, "its previous-hash does not match the entry before"
                )
            recomputed = entry_hash(
                e.seq, e.ts, e.tenant, e.actor, e.action, e.target, e.outcome, e.detail, prev
            )
            if recomputed != e.hash:
                return VerifyResult(False, checked, e.seq, "its content was modified")
            prev, expected_seq, checked = e.hash, expected_seq + 1, checked + 1
        if head is None and rows:
            return VerifyResult(False, checked, 1, "the chain head is missing")
        if head is not None and (int(head[0]) != checked or str(head[1]) != prev):
            return VerifyResult(
                False,
                checked,
                checked + 1,
                f"the chain ends at entry {checked} but its head says {head[0]} (entries were"
                " deleted from the end)",
            )
        return VerifyResult(ok=True, checked=checked)
