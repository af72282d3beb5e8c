"""The audit log: every policy decision and every tool call, in SQLite (``<data_dir>/audit.db``).

Arguments are never stored, only their SHA-256 digest (they may hold secrets).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          REAL    NOT NULL,
    tool        TEXT    NOT NULL,
    args_sha256 TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    duration_ms INTEGER NOT NULL,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
"""


def audit_file(data_dir: Path) -> Path:
    return data_dir / "audit.db"


def args_digest(args: Mapping[str, Any]) -> str:
    """SHA-256 of the arguments as canonical JSON."""
    blob = json.dumps(dict(args), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    ts: float
    tool: str
    args_sha256: str
    decision: str
    outcome: str
    duration_ms: int
    detail: str


class AuditLog:
    """Appends and reads audit rows; opens the database per call (safe across processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"the audit log {self.path} cannot be opened ({exc}).") from None
        return conn

    def record(
        self,
        tool: str,
        args: Mapping[str, Any],
        decision: str,
        outcome: str,
        duration_ms: int = 0,
        detail: str = "",
    ) -> None:
        """Append one row."""
        conn = self._connect()
        try:
            with conn:
                conn.execute(
                    "INSERT INTO audit (ts, tool, args_sha256, decision, outcome, duration_ms,"
                    " detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        time.time(),
                        tool,
                        args_digest(args),
                        decision,
                        outcome,
                        duration_ms,
                        detail[:500],
                    ),
                )
        finally:
            conn.close()

    def rows(self, limit: int = 100) -> list[AuditRow]:
        """The newest ``limit`` rows, oldest first."""
        if not self.path.exists():
            return []
        conn = self._connect()
        try:
            found = conn.execute(
                "SELECT id, ts, tool, args_sha256, decision, outcome, duration_ms, detail"
                " FROM audit ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        finally:
            conn.close()
        return [AuditRow(*row) for row in reversed(found)]
