"""The access statistics of the SQLite store: counters, the append-only log, the history.

Three narrow tables (migration 7), none of them the wide ``records`` row:

- ``record_stats (num, access_count, last_access_at)``: the counters a record shows, one
  row per record accessed at least once. A bump rewrites a few bytes on a page shared by
  hundreds of records, so a flush of thousands of accesses dirties few pages.
- ``access_log (num, at)``: the accesses not yet folded, appended in rowid order with no
  index (each append lands on the last page). A forgotten record's entries stay until the
  next fold, which drops them: every read joins ``records``.
- ``access_history (num, at)``: the folded times, at most the first ``KEEP_FIRST`` and the
  last ``KEEP_LAST`` of each record (``magray.memory.access.bounded``).

``fold`` moves the log into the history and trims it; it runs inside the write that appends
once ``FOLD_AT`` accesses are pending, and before lifecycle writes. ``access_times`` reads
history and log together, so it never reads more than ``KEPT`` times per record plus one
fold's worth of log.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

from magray.memory.access import FOLD_AT, KEEP_FIRST, KEEP_LAST, bounded

_BUMP = (
    "INSERT INTO record_stats (num, access_count, last_access_at)"
    " SELECT num, 1, ? FROM records WHERE num = ?"
    " ON CONFLICT (num) DO UPDATE SET access_count = access_count + 1,"
    " last_access_at = excluded.last_access_at"
)
# The history rows of the records in ``touched`` (a subquery over ``num``) beyond the bound.
_TRIM = (
    "DELETE FROM access_history WHERE rowid IN (SELECT id FROM (SELECT h.rowid AS id,"
    " row_number() OVER (PARTITION BY h.num ORDER BY h.at, h.rowid) AS i,"
    " count(*) OVER (PARTITION BY h.num) AS n FROM access_history h WHERE h.num IN ({touched}))"
    f" WHERE i > {KEEP_FIRST} AND i <= n - {KEEP_LAST})"
)


def bump(conn: sqlite3.Connection, events: Sequence[tuple[int, float]]) -> None:
    """Count each (label, time) access inside the caller's transaction: the counters of a
    live record go up and the access joins the log (a forgotten record counts nothing);
    folds the log once ``FOLD_AT`` accesses are pending."""
    conn.executemany(_BUMP, [(at, n) for n, at in events])
    conn.executemany("INSERT INTO access_log (num, at) VALUES (?, ?)", list(events))
    if pending(conn) >= FOLD_AT:
        fold(conn)


def add(conn: sqlite3.Connection, num: int, count: int, last: float | None) -> None:
    """Add ``count`` accesses, the latest at ``last``, to the counters of record ``num``
    (a bump on storing the same content again, a merge, an exact import)."""
    if count <= 0 and last is None:
        return
    conn.execute(
        "INSERT INTO record_stats (num, access_count, last_access_at) VALUES (?, ?, ?)"
        " ON CONFLICT (num) DO UPDATE SET access_count = access_count + excluded.access_count,"
        " last_access_at = CASE WHEN last_access_at IS NULL THEN excluded.last_access_at"
        " WHEN excluded.last_access_at IS NULL THEN last_access_at"
        " ELSE MAX(last_access_at, excluded.last_access_at) END",
        (num, count, last),
    )


def pending(conn: sqlite3.Connection) -> int:
    """About how many accesses wait in the log (the span of its rowids: two index probes)."""
    row = conn.execute("SELECT MAX(rowid) - MIN(rowid) + 1 FROM access_log").fetchone()
    return int(row[0] or 0)


def fold(conn: sqlite3.Connection) -> None:
    """Move the log into the bounded history, inside the caller's write transaction."""
    row = conn.execute("SELECT MAX(rowid) FROM access_log").fetchone()
    if row is None or row[0] is None:
        return
    upto = int(row[0])
    conn.execute(
        "INSERT INTO access_history (num, at) SELECT l.num, l.at FROM access_log l"
        " JOIN records r ON r.num = l.num WHERE l.rowid <= ? ORDER BY l.rowid",
        (upto,),
    )
    conn.execute(
        _TRIM.format(touched="SELECT num FROM access_log WHERE rowid <= ?"),
        (upto,),
    )
    conn.execute("DELETE FROM access_log WHERE rowid <= ?", (upto,))


def trim(conn: sqlite3.Connection, nums: Iterable[int]) -> None:
    """Bound the history of the records ``nums`` (after a merge moved times onto one)."""
    wanted = list(dict.fromkeys(nums))
    if wanted:
        conn.execute(_TRIM.format(touched=",".join("?" * len(wanted))), wanted)


def access_times(conn: sqlite3.Connection) -> dict[int, list[float]]:
    """The kept access times of every live record, ascending, by label (history and log
    together, bounded as a fold would bound them)."""
    times: dict[int, list[float]] = defaultdict(list)
    for num, at in conn.execute(
        "SELECT h.num, h.at FROM access_history h UNION ALL"
        " SELECT l.num, l.at FROM access_log l JOIN records r ON r.num = l.num"
    ):
        times[int(num)].append(float(at))
    return {num: bounded(ts) for num, ts in sorted(times.items())}


def times_of(conn: sqlite3.Connection, num: int) -> list[float]:
    """The kept access times of one record (after a fold: the history alone)."""
    rows = conn.execute("SELECT at FROM access_history WHERE num = ? ORDER BY at", (num,))
    return [float(at) for (at,) in rows]
