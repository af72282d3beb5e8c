"""The conversation log: every exchange with its provider, model, tokens, latency and citations."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.errors import NotFoundError, StoreError
from magray.sqlite_migrations import advice, connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    title TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    num INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    at REAL NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    memories TEXT NOT NULL,
    finish_reason TEXT
);
CREATE INDEX IF NOT EXISTS turns_conversation ON turns (conversation_id, num);
"""
# The first schema was created without bookkeeping; ``IF NOT EXISTS`` adopts such logs.
MIGRATIONS = [(1, "conversations and turns", _SCHEMA)]


@dataclass(frozen=True, slots=True)
class Turn:
    conversation_id: str
    at: float
    prompt: str
    answer: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    memories: tuple[str, ...]
    finish_reason: str | None

    def to_dict(self) -> dict[str, Any]:
        """The exchange as JSON data (``magray logs --json``)."""
        from magray.timefmt import iso

        return {
            "conversation_id": self.conversation_id,
            "at": iso(self.at),
            "prompt": self.prompt,
            "answer": self.answer,
            "provider": self.provider,
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": round(self.latency_ms, 1),
            "memories": list(self.memories),
            "finish_reason": self.finish_reason,
        }


class ConversationLog:
    """SQLite-backed log of conversations (``<data_dir>/conversations.db``)."""

    def __init__(self, path: Path) -> None:
        try:
            self.conn = connect(path, migrations=MIGRATIONS)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"the conversation log {path} cannot be used: {exc}{advice(exc)}."
            ) from None

    def close(self) -> None:
        self.conn.close()

    def last_conversation(self) -> str:
        row = self.conn.execute(
            "SELECT id FROM conversations ORDER BY updated_at DESC LIMIT 1"
        ).fetchone()
        if row is None:
            raise NotFoundError("there is no earlier conversation to continue; drop -c.")
        return str(row[0])

    def exists(self, conversation_id: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        return row is not None

    def turns(self, conversation_id: str, limit: int = 50) -> list[Turn]:
        rows = self.conn.execute(
            "SELECT conversation_id, at, prompt, answer, provider, model, prompt_tokens,"
            " completion_tokens, latency_ms, memories, finish_reason FROM turns"
            " WHERE conversation_id = ? ORDER BY num DESC LIMIT ?",
            (conversation_id, limit),
        ).fetchall()
        return [_turn(r) for r in reversed(rows)]

    def recent(self, limit: int) -> list[Turn]:
        rows = self.conn.execute(
            "SELECT conversation_id, at, prompt, answer, provider, model, prompt_tokens,"
            " completion_tokens, latency_ms, memories, finish_reason FROM turns"
            " ORDER BY num DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [_turn(r) for r in rows]

    def record(self, turn: Turn) -> None:
        now = time.time()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                "INSERT INTO conversations (id, started_at, updated_at, title) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                (turn.conversation_id, now, now, turn.prompt[:80]),
            )
            self.conn.execute(
                "INSERT INTO turns (conversation_id, at, prompt, answer, provider, model,"
                " prompt_tokens, completion_tokens, latency_ms, memories, finish_reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    turn.conversation_id,
                    turn.at,
                    turn.prompt,
                    turn.answer,
                    turn.provider,
                    turn.model,
                    turn.prompt_tokens,
                    turn.completion_tokens,
                    turn.latency_ms,
                    json.dumps(list(turn.memories)),
                    turn.finish_reason,
                ),
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise


def _turn(row: Sequence[object]) -> Turn:
    memories = json.loads(str(row[9]))
    return Turn(
        conversation_id=str(row[0]),
        at=float(row[1]),  # type: ignore[arg-type]
        prompt=str(row[2]),
        answer=str(row[3]),
        provider=str(row[4]),
        model=str(row[5]),
        prompt_tokens=int(row[6]),  # type: ignore[call-overload]
        completion_tokens=int(row[7]),  # type: ignore[call-overload]
        latency_ms=float(row[8]),  # type: ignore[arg-type]
        memories=tuple(memories),
        finish_reason=None if row[10] is None else str(row[10]),
    )
