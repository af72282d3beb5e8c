"""The access history of the PostgreSQL backend, bounded as the SQLite store bounds it.

``record_stats`` holds the counters; ``access_log`` the accesses not yet folded (appended);
``access_history`` each record's kept times, at most the first ``KEEP_FIRST`` and the last
``KEEP_LAST`` (``magray.memory.access``; ``bounded_times`` in SQL). ``FOLD`` moves the log
into the history in one statement: after a flush once ``FOLD_AT`` accesses wait (only when
the writer lock is free) and at the start of lifecycle writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from magray.memory.access import bounded

if TYPE_CHECKING:
    import psycopg

# ``{guard}``: a condition every log row must meet to be folded (``true`` under the lock).
FOLD = (
    "WITH {lock} moved AS (DELETE FROM access_log WHERE {guard} RETURNING num, at),"
    " grouped AS (SELECT m.num, array_agg(m.at ORDER BY m.at) AS times FROM moved m"
    " JOIN record_stats s ON s.num = m.num GROUP BY m.num)"
    " INSERT INTO access_history (num, times) SELECT num, bounded_times(times) FROM grouped"
    " ON CONFLICT (num) DO UPDATE SET"
    " times = bounded_times(access_history.times || excluded.times)"
)
FOLD_LOCKED = FOLD.format(lock="", guard="true")
FOLD_IF_FREE = FOLD.format(
    lock="lock AS (SELECT pg_try_advisory_xact_lock(hashtext(%s)) AS got),",
    guard="(SELECT got FROM lock)",
)
PENDING = "SELECT COALESCE(MAX(seq) - MIN(seq) + 1, 0) FROM access_log"
# Add one history to another (a merge of twins, a restore): ``%s`` the target, the times.
ADD = (
    "INSERT INTO access_history (num, times) VALUES (%s, bounded_times(%s::double precision[]))"
    " ON CONFLICT (num) DO UPDATE SET"
    " times = bounded_times(access_history.times || excluded.times)"
)

# Move record ``%s`` (the second)'s history onto ``%s`` (the first): a merge of twins.
MOVE = (
    "INSERT INTO access_history (num, times) SELECT %s, times FROM access_history"
    " WHERE num = %s ON CONFLICT (num) DO UPDATE SET"
    " times = bounded_times(access_history.times || excluded.times)"
)


def kept_times(conn: psycopg.Connection[Any], key: str = "num") -> dict[Any, list[float]]:
    """Every live record's kept access times, ascending, by ``num`` or by ``id``: the
    history and the waiting log together, bounded as a fold bounds them."""
    out: dict[Any, list[float]] = {}
    for name, times in _rows(conn, key):
        out[name] = bounded([*out.get(name, ()), *(float(t) for t in times)])
    return {name: ts for name, ts in sorted(out.items()) if ts}


def _rows(conn: psycopg.Connection[Any], key: str) -> Iterator[tuple[Any, list[float]]]:
    label = "r.id" if key == "id" else "h.num"
    join = " JOIN records r ON r.num = h.num" if key == "id" else ""
    yield from conn.execute(f"SELECT {label}, h.times FROM access_history h{join}")
    label = "r.id" if key == "id" else "l.num"
    join = " JOIN records r ON r.num = l.num" if key == "id" else ""
    yield from conn.execute(
        f"SELECT {label}, array_agg(l.at ORDER BY l.at) FROM access_log l"
        f" JOIN record_stats s ON s.num = l.num{join} GROUP BY 1"
    )
