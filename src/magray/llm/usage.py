"""The LLM ledger: one row per call and each provider's circuit-breaker state, in ``llm.db``.

Kept apart from the memory store so a busy agent never waits on the memory writer lock.
WAL mode, numbered migrations recorded in ``schema_migrations``. The breaker state lives
here too, so a provider that keeps failing stays skipped across CLI invocations.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from magray.errors import StoreError
from magray.sqlite_migrations import advice, connect, read_only

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "calls and breakers",
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            day TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL DEFAULT 0,
            first_token_ms REAL,
            ok INTEGER NOT NULL,
            error TEXT,
            cost_usd REAL NOT NULL DEFAULT 0
        );
        CREATE INDEX calls_day ON calls (day, provider, model);
        CREATE TABLE breakers (
            provider TEXT PRIMARY KEY,
            failures INTEGER NOT NULL DEFAULT 0,
            opened_at REAL
        );
        """,
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def day_of(ts: float) -> str:
    """The UTC calendar day of ``ts`` (budgets reset at 00:00 UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


@dataclass(frozen=True, slots=True)
class Call:
    """One LLM call as recorded."""

    at: float
    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    ok: bool = True
    error: str | None = None
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Totals of one provider/model on one day."""

    day: str
    provider: str
    model: str
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    avg_latency_ms: float


@dataclass(frozen=True, slots=True)
class BreakerState:
    failures: int = 0
    opened_at: float | None = None


class UsageStore:
    """``<data_dir>/llm.db``: the call ledger and breaker states."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._conn = connect(path, timeout=10.0, migrations=MIGRATIONS)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"the LLM usage database {path} cannot be used ({exc}){advice(exc)}."
            ) from None

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # -- calls ----------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO calls (at, day, provider, model, prompt_tokens, completion_tokens,"
                " latency_ms, first_token_ms, ok, error, cost_usd)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    call.at,
                    day_of(call.at),
                    call.provider,
                    call.model,
                    call.prompt_tokens,
                    call.completion_tokens,
                    call.latency_ms,
                    call.first_token_ms,
                    int(call.ok),
                    call.error,
                    call.cost_usd,
                ),
            )

    def spent(self, day: str) -> tuple[int, float]:
        """(tokens, dollars) spent on ``day`` across all providers."""
        row = self._conn.execute(
            "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"
            " FROM calls WHERE day = ?",
            (day,),
        ).fetchone()
        return int(row[0]), float(row[1])

    def totals(self, since_day: str) -> list[UsageRow]:
        """Per day, provider and model, newest day first, from ``since_day`` on."""
        rows = self._conn.execute(
            "SELECT day, provider, model, COUNT(*), SUM(1 - ok), SUM(prompt_tokens),"
            " SUM(completion_tokens), SUM(cost_usd), AVG(latency_ms)"
            " FROM calls WHERE day >= ? GROUP BY day, provider, model"
            " ORDER BY day DESC, provider, model",
            (since_day,),
        ).fetchall()
        return [
            UsageRow(
                str(r[0]),
                str(r[1]),
                str(r[2]),
                int(r[3]),
                int(r[4]),
                int(r[5]),
                int(r[6]),
                float(r[7]),
                float(r[8] or 0.0),
            )
            for r in rows
        ]

    # -- breakers -------------------------------------------------------------------------

    def breaker(self, provider: str) -> BreakerState:
        row = self._conn.execute(
            "SELECT failures, opened_at FROM breakers WHERE provider = ?", (provider,)
        ).fetchone()
        if row is None:
            return BreakerState()
        return BreakerState(int(row[0]), None if row[1] is None else float(row[1]))

    def set_breaker(self, provider: str, state: BreakerState) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO breakers (provider, failures, opened_at) VALUES (?, ?, ?)"
                " ON CONFLICT (provider) DO UPDATE SET failures = excluded.failures,"
                " opened_at = excluded.opened_at",
                (provider, state.failures, state.opened_at),
            )


def read_breakers(path: Path) -> dict[str, BreakerState]:
    """Every provider's saved breaker state in the ledger at ``path``, read on a read-only
    connection of its own: callable from any thread, it never waits for the thread whose
    ``UsageStore`` makes the calls. None before the ledger exists.

    Raises:
        StoreError: the ledger exists but cannot be read.
    """
    if not path.is_file():
        return {}
    try:
        with read_only(path) as conn:
            rows = conn.execute("SELECT provider, failures, opened_at FROM breakers").fetchall()
    except sqlite3.Error as exc:
        if "no such table" in str(exc):  # made, not migrated yet
            return {}
        raise StoreError(
            f"the LLM usage database {path} cannot be read ({exc}){advice(exc)}."
        ) from None
    return {
        str(name): BreakerState(int(failures), None if opened is None else float(opened))
        for name, failures, opened in rows
    }
