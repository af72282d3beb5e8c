"""The audit log: every policy decision and every tool call, in SQLite (``<data_dir>/audit.db``).

Arguments are never stored, only their SHA-256 digest (they may hold secrets). The
detail (the decision's reason or the error message, which may quote an argument) is
stored only after ``redact``: credentials in URLs (``user:pass@``), secret-looking
parameters (``access_token=``, ``api_key=``, ``password=``, …), bearer and basic
credentials and well-known token shapes (``sk-…``, ``ghp_…``) become ``***``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.errors import StoreError
from magray.paths import DATABASE_FILES
from magray.sqlite_migrations import connect

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
# The first schema was created without bookkeeping; ``IF NOT EXISTS`` adopts such logs.
MIGRATIONS = [(1, "audit rows", _SCHEMA)]


MASK = "***"

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_SECRET_PARAM = re.compile(
    r"(?i)([\w.-]*(?:token|key|secret|passw|pwd|auth|signature|sig|credential|session|cookie)"
    r"[\w.-]*)(\s*[=:]\s*)(?!\*\*\*)(\"[^\"]*\"|'[^']*'|[^\s&#,;'\"]+)"
)
_SCHEME_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|token)\s+(?!\*\*\*)[\w.~+/=-]+")
_TOKEN_SHAPES = re.compile(
    r"\b(?:sk-[\w-]{16,}|gh[pousr]_\w{20,}|github_pat_\w{20,}|xox[abposr]-[\w-]{10,}"
    r"|AKIA[0-9A-Z]{16}|hf_\w{20,}|glpat-[\w-]{20,}|AIza[\w-]{35})"
)


def redact(text: str) -> str:
    """``text`` with credentials masked: URL userinfo, secret-looking ``name=value`` pairs,
    ``Bearer``/``Basic`` credentials and well-known API token shapes."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _TOKEN_SHAPES.sub(MASK, text)


def audit_file(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILES["audit"]


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
            conn = connect(self.path, migrations=MIGRATIONS)
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
        """Append one row (the detail redacted, the arguments as a digest only)."""
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
                        redact(detail)[:500],
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
