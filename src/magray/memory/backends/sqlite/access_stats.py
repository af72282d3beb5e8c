"""The access statistics of the SQLite store: counters, the pending log, the history.

Three narrow tables (migration 7), none of them the wide ``records`` row:

- ``record_stats (num, access_count, last_access_at)``: the counters a record shows, one
  row per record accessed at least once. A bump rewrites a few bytes on a page shared by
  hundreds of records, so a flush of thousands of accesses dirties few pages.
- ``access_log (num, at)``: the accesses not yet folded, appended in rowid order with no
  index (an append writes the last page). A forgotten record's entries stay until the next
  fold, which drops them (and its counters, if a bump raced the delete); reads join
  ``records``.
- ``access_history (num, times)``: each record's kept access times, ascending, packed as
  little-endian float64: at most the first ``KEEP_FIRST`` and the last ``KEEP_LAST``
  (``magray.memory.access.bounded``).

``fold`` moves the log into the history: one read and one write per record touched, however
many accesses it had. It runs inside the write that appends once ``FOLD_AT`` accesses are
pending, before lifecycle writes and after the migration that created these tables.
``access_times`` reads history and log together: never more than ``KEPT`` times per record
plus one fold's worth of log.
"""

from __future__ import annotations

import sqlite3
import struct
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from magray.memory.access import FOLD_AT, KEEP_FIRST, KEEP_LAST, KEPT, bounded

# No look-up of the record: that read of its wide row's page was 40 % of a flush. The
# counters of a record forgotten meanwhile (by another process: ``Memory`` writes pending
# accesses before it deletes) are dropped by the next fold; nothing reads them before.
_BUMP = (
    "INSERT INTO record_stats (num, access_count, last_access_at) VALUES (?2, 1, ?1)"
    " ON CONFLICT (num) DO UPDATE SET access_count = access_count + 1,"
    " last_access_at = excluded.last_access_at"
)
#: rows a fold handles between two pauses, and how long it pauses (see ``fold``)
YIELD_ROWS = 256
YIELD_SECONDS = 0.0002
_PUT = (
    "INSERT INTO access_history (num, times) SELECT num, ? FROM record_stats WHERE num = ?"
    " ON CONFLICT (num) DO UPDATE SET times = excluded.times"
)


def pack(times: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(times)}d", *times)


def unpack(blob: object) -> list[float]:
    """Stored times; a value no MAGRAY writes reads as no times."""
    if not isinstance(blob, bytes) or len(blob) % 8:
        return []
    return list(struct.unpack(f"<{len(blob) // 8}d", blob))


def bump(conn: sqlite3.Connection, events: Sequence[tuple[int, float]]) -> None:
    """Count each (label, time) access inside the caller's transaction: the counters of a
    record go up and the access joins the log (a record forgotten meanwhile shows nothing:
    the next fold drops what it got); folds the log once ``FOLD_AT`` accesses are pending.
    Runs on a connection without foreign-key checks (``Store.record_accesses``)."""
    conn.executemany(_BUMP, [(at, n) for n, at in events])
    conn.executemany("INSERT INTO access_log (num, at) VALUES (?, ?)", list(events))
    if pending(conn) >= FOLD_AT:
        fold(conn)


def add(conn: sqlite3.Connection, num: int, count: int, last: float | None) -> None:
    """Add ``count`` accesses, the latest at ``last``, to the counters of record ``num``
    (storing the same content again, a merge, an exact import)."""
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
    """About how many accesses wait in the log (the span of its rowids: two probes)."""
    row = conn.execute("SELECT MAX(rowid) - MIN(rowid) + 1 FROM access_log").fetchone()
    return int(row[0] or 0)


def fold(conn: sqlite3.Connection) -> None:
    """Move the log into the bounded history, inside the caller's write transaction.

    It runs on a background thread (``memory.access``), in a server beside the searches of
    the same process, and holds the interpreter lock for most of its ~70 ms of CPU: every
    ``YIELD_ROWS`` rows it sleeps a moment so that a thread waiting for the lock (the event
    loop, a search) takes it at once, instead of after the interpreter's 5 ms switch
    interval at each of its turns."""
    row = conn.execute("SELECT MAX(rowid) FROM access_log").fetchone()
    if row is None or row[0] is None:
        return
    upto = int(row[0])
    new: dict[int, list[float]] = defaultdict(list)
    log = conn.execute("SELECT num, at FROM access_log WHERE rowid <= ? ORDER BY num, at", (upto,))
    for num, at in _paced(log):
        new[num].append(at)
    still = conn.execute(  # the records still there, with their history so far
        "SELECT r.num, h.times FROM records r LEFT JOIN access_history h ON h.num = r.num"
        " WHERE r.num IN (SELECT num FROM access_log WHERE rowid <= ?)",
        (upto,),
    )
    live: list[tuple[int, bytes | None]] = list(_paced(still))
    gone = set(new).difference(num for num, _ in live)
    conn.executemany("DELETE FROM record_stats WHERE num = ?", [(num,) for num in gone])
    for start in range(0, len(live), YIELD_ROWS):
        conn.executemany(
            "INSERT INTO access_history (num, times) VALUES (?, ?)"
            " ON CONFLICT (num) DO UPDATE SET times = excluded.times",
            [(num, _appended(old, new[num])) for num, old in live[start : start + YIELD_ROWS]],
        )
        _pause()
    conn.execute("DELETE FROM access_log WHERE rowid <= ?", (upto,))


def _pause() -> None:
    time.sleep(YIELD_SECONDS)


def _paced(cursor: sqlite3.Cursor) -> Iterator[Any]:
    """The rows of ``cursor``, with a pause after every ``YIELD_ROWS`` of them."""
    while rows := cursor.fetchmany(YIELD_ROWS):
        yield from rows
        _pause()


def _appended(old: bytes | None, times: list[float]) -> bytes:
    """The packed history ``old`` with ``times`` (ascending) added, bounded. The common
    case, times later than the history's last, works on the bytes without unpacking: the
    history and the new times in order, and past ``KEPT`` its first ``KEEP_FIRST`` and last
    ``KEEP_LAST`` times (what ``bounded`` keeps of an ascending list)."""
    if not old:
        if len(times) <= KEPT:
            return pack(times)
    elif (
        isinstance(old, bytes)
        and not len(old) % 8
        and times[0] >= struct.unpack_from("<d", old, len(old) - 8)[0]
    ):
        joined = old + pack(times)
        if len(joined) <= KEPT * 8:
            return joined
        return joined[: KEEP_FIRST * 8] + joined[-KEEP_LAST * 8 :]
    return pack(bounded([*unpack(old), *times]))


def merge(conn: sqlite3.Connection, src: int, dst: int) -> None:
    """Move record ``src``'s history onto ``dst`` (after a fold; ``src`` is deleted next)."""
    rows = dict(
        conn.execute("SELECT num, times FROM access_history WHERE num IN (?, ?)", (src, dst))
    )
    if src in rows:
        times = bounded([*unpack(rows.get(dst)), *unpack(rows[src])])
        conn.execute(_PUT, (pack(times), dst))


def access_times(conn: sqlite3.Connection) -> dict[int, list[float]]:
    """The kept access times of every live record, ascending, by label (history and log
    together, bounded as a fold would bound them)."""
    times: dict[int, list[float]] = {
        int(num): unpack(blob)
        for num, blob in conn.execute("SELECT num, times FROM access_history ORDER BY num")
    }
    waiting: dict[int, list[float]] = defaultdict(list)
    for num, at in conn.execute(
        "SELECT l.num, l.at FROM access_log l JOIN records r ON r.num = l.num"
    ):
        waiting[int(num)].append(float(at))
    for num, ts in waiting.items():
        times[num] = bounded([*times.get(num, ()), *ts])
    return {num: ts for num, ts in sorted(times.items()) if ts}


def times_of(conn: sqlite3.Connection, num: int) -> list[float]:
    """The kept access times of one record (after a fold: the history alone)."""
    row = conn.execute("SELECT times FROM access_history WHERE num = ?", (num,)).fetchone()
    return [] if row is None else unpack(row[0])
