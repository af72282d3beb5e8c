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

A fold moves the log into the history: one read and one write per record touched, however
many accesses it had. Once ``FOLD_AT`` accesses are pending, the store's fold thread
(``Store.fold_soon``) folds the log in steps of about ``STEP_ROWS`` rows, each a short
write transaction of its own (``fold_in_steps``), so other writers wait for one step, not
for the whole fold; lifecycle writes do the same first and fold whatever is left inside
their transaction (``fold``), and so does the migration that created these tables.
``access_times`` reads history and log together: never more than ``KEPT`` times per record
plus one fold's worth of log.
"""

from __future__ import annotations

import contextlib
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
#: log rows one step of a fold moves in one write transaction, and how long the fold pauses
#: after each step (see ``fold_in_steps``)
STEP_ROWS = 1024
YIELD_SECONDS = 0.0002
YIELD_ROWS = 256  # rows a fold reads between two pauses
#: the ``meta`` key of a fold at work, and how long its claim holds (see ``fold_in_steps``)
LEASE_KEY = "access_fold"
LEASE_SECONDS = 30.0
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
    the next fold drops what it got). Once ``due``, the caller folds the log after its
    commit (``fold_in_steps``). Runs on a connection without foreign-key checks
    (``Store.record_accesses``)."""
    conn.executemany(_BUMP, [(at, n) for n, at in events])
    conn.executemany("INSERT INTO access_log (num, at) VALUES (?, ?)", list(events))


def due(conn: sqlite3.Connection) -> bool:
    """Whether ``FOLD_AT`` accesses or more wait in the log."""
    return pending(conn) >= FOLD_AT


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
    """Move the whole log into the bounded history, inside the caller's write transaction
    (lifecycle, the migration). The statistics' own writes fold with ``fold_in_steps``."""
    upto = last_logged(conn)
    if upto is not None:
        while fold_step(conn, upto):
            pass


def fold_in_steps(conn: sqlite3.Connection) -> int:
    """Move the log as it is now into the bounded history in steps, each one short write
    transaction of its own (``BEGIN IMMEDIATE``) on ``conn``, a connection in autocommit mode
    outside any transaction that nothing else uses meanwhile (it keeps temporary tables);
    returns how many steps it committed.

    The log and the histories it touches are read first, in one read transaction (no write
    lock), and each step's new histories are computed before its write: a step's transaction
    only checks that its log rows are still in the log and its histories and records are as
    read, then moves them (a few statements that run in SQLite, each without the interpreter
    lock). So another write to the store (a record added by the API or by another process,
    lifecycle) waits for one step at most, not for the whole fold, and a step's hold of the
    write lock does not grow with the interpreter's switch interval when searches compete
    for the interpreter lock. A step takes the log rows of consecutive records (about
    ``STEP_ROWS`` of them): each history page is written once per fold.

    Each step moves its rows atomically (into the history, out of the log), so a fold that
    stops anywhere, killed or failing, loses no access and counts none twice: what is left
    in the log is folded later. A fold first claims the log (``_claim``): while one is at
    work, the others that would start (another worker's write sees the log ``due`` too) do
    nothing. If a step's check fails all the same (a claim expired, a lifecycle write
    folded or changed a history meanwhile) the step is rolled back and the fold stops; the
    next one reads the log again. Between two pieces of work it sleeps a moment, so that a thread
    waiting for the interpreter lock (the event loop, a search) takes it at once instead of
    after the interpreter's 5 ms switch interval."""
    upto = _claim(conn)
    if upto is None:
        return 0
    try:
        return _fold_claimed(conn, upto)
    finally:
        with contextlib.suppress(sqlite3.Error):  # give our claim back (or it expires)
            conn.execute(
                "DELETE FROM meta WHERE key = ? AND value LIKE ?", (LEASE_KEY, f"% {upto}")
            )


def _claim(conn: sqlite3.Connection) -> int | None:
    """Claim the fold of the log up to its last row now, for ``LEASE_SECONDS`` (``meta``:
    "until upto"); the row, or None when there is nothing to fold or another fold holds an
    unexpired claim (then the log is being folded: the writes of other workers, which see
    ``due`` meanwhile, do not read it again). A fold that was killed leaves its claim behind
    until it expires."""
    held = conn.execute("SELECT value FROM meta WHERE key = ?", (LEASE_KEY,)).fetchone()
    if held is not None and _until(held[0]) > time.time():
        return None  # cheap: no write lock
    with _transaction(conn, "BEGIN IMMEDIATE"):
        held = conn.execute("SELECT value FROM meta WHERE key = ?", (LEASE_KEY,)).fetchone()
        upto = last_logged(conn)  # later accesses are left for the next fold
        if upto is None or (held is not None and _until(held[0]) > time.time()):
            return None
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (LEASE_KEY, f"{time.time() + LEASE_SECONDS!r} {upto}"),
        )
    return upto


def _until(value: object) -> float:
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return 0.0  # a claim no MAGRAY writes has expired


def _fold_claimed(conn: sqlite3.Connection, upto: int) -> int:
    with _transaction(conn, "BEGIN"):  # one snapshot for both reads
        rows: list[tuple[int, int, float]] = list(
            _paced(conn.execute("SELECT rowid, num, at FROM access_log WHERE rowid <= ?", (upto,)))
        )
        old: dict[int, bytes | None] = dict(  # the records still there, their history so far
            _paced(
                conn.execute(
                    "SELECT r.num, h.times FROM records r LEFT JOIN access_history h"
                    " ON h.num = r.num WHERE r.num IN"
                    " (SELECT num FROM access_log WHERE rowid <= ?)",
                    (upto,),
                )
            )
        )
    rows.sort(key=lambda r: (r[1], r[2]))
    conn.execute(_TEMP_ROWS)
    conn.execute(_TEMP_HISTORY)
    steps = 0
    start = 0
    while start < len(rows):
        end = min(start + STEP_ROWS, len(rows))
        while end < len(rows) and rows[end][1] == rows[end - 1][1]:
            end += 1  # a record's rows in one step
        if not _step(conn, rows[start:end], old):
            break
        steps += 1
        start = end
    return steps


_TEMP_ROWS = (
    "CREATE TEMP TABLE IF NOT EXISTS fold_rows (rid INTEGER PRIMARY KEY, num INTEGER, at REAL)"
)
_TEMP_HISTORY = (
    "CREATE TEMP TABLE IF NOT EXISTS fold_history"
    " (num INTEGER PRIMARY KEY, old BLOB, new BLOB, gone INTEGER NOT NULL)"
)
# Whether a step's log rows are all still in the log and its records as read: 1 or 0.
_UNCHANGED = (
    "SELECT (SELECT COUNT(*) FROM temp.fold_rows t JOIN main.access_log l"
    " ON l.rowid = t.rid AND l.num = t.num AND l.at = t.at)"
    " = (SELECT COUNT(*) FROM temp.fold_rows) AND NOT EXISTS (SELECT 1 FROM temp.fold_history t"
    " LEFT JOIN main.records r ON r.num = t.num LEFT JOIN main.access_history h ON h.num = t.num"
    " WHERE (r.num IS NULL) != t.gone OR (NOT t.gone AND h.times IS NOT t.old))"
)


def _step(
    conn: sqlite3.Connection, rows: list[tuple[int, int, float]], old: dict[int, bytes | None]
) -> bool:
    """One step of ``fold_in_steps``: ``rows`` (rowid, label, time) sorted by label and time;
    ``old`` the histories read, by label, of the records that were there. Returns whether
    it moved them (False: something changed meanwhile, nothing written)."""
    new: dict[int, list[float]] = defaultdict(list)
    for _, num, at in rows:
        new[num].append(at)
    history = [
        (num, old[num], _appended(old[num], ts), 0) if num in old else (num, None, None, 1)
        for num, ts in new.items()
    ]
    with _transaction(conn, "BEGIN"):  # writes only the temporary tables: no lock on the store
        conn.execute("DELETE FROM temp.fold_rows")
        conn.execute("DELETE FROM temp.fold_history")
        conn.executemany("INSERT INTO temp.fold_rows (rid, num, at) VALUES (?, ?, ?)", rows)
        conn.executemany(
            "INSERT INTO temp.fold_history (num, old, new, gone) VALUES (?, ?, ?, ?)", history
        )
    pause()
    with _transaction(conn, "BEGIN IMMEDIATE"):
        if not conn.execute(_UNCHANGED).fetchone()[0]:
            conn.execute("ROLLBACK")
            return False
        conn.execute(
            "DELETE FROM main.record_stats"
            " WHERE num IN (SELECT num FROM temp.fold_history WHERE gone)"
        )
        conn.execute(
            "INSERT INTO main.access_history (num, times)"
            " SELECT num, new FROM temp.fold_history WHERE NOT gone"
            " ON CONFLICT (num) DO UPDATE SET times = excluded.times"
        )
        conn.execute("DELETE FROM main.access_log WHERE rowid IN (SELECT rid FROM temp.fold_rows)")
    pause()
    return True


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str) -> Iterator[None]:
    """``begin`` … COMMIT around the block (unless it ended the transaction itself); any
    error rolls it back and goes on."""
    conn.execute(begin)
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if conn.in_transaction:
        conn.execute("COMMIT")


def fold_step(conn: sqlite3.Connection, upto: int) -> bool:
    """Move the oldest log rows, at most ``STEP_ROWS`` of them and none past rowid ``upto``,
    into the bounded history, inside the caller's write transaction; returns whether rows up
    to ``upto`` are left. The bounds are read in the transaction: rows another fold moved
    meanwhile are not in the log any more."""
    row = conn.execute("SELECT MIN(rowid) FROM access_log").fetchone()
    if row is None or row[0] is None or row[0] > upto:
        return False
    lo = int(row[0])
    hi = min(upto, lo + STEP_ROWS - 1)  # fewer rows where a fold in steps stopped midway
    _fold_range(conn, lo, hi)
    return hi < upto


def last_logged(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MAX(rowid) FROM access_log").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _fold_range(conn: sqlite3.Connection, lo: int, hi: int) -> None:
    """Move the log rows ``lo``..``hi`` into the history: one read and one write per record
    touched, however many accesses it had; a record forgotten meanwhile loses its counters
    (a bump raced its delete) instead of gaining a history."""
    new: dict[int, list[float]] = defaultdict(list)
    span = (lo, hi)
    for num, at in conn.execute(
        "SELECT num, at FROM access_log WHERE rowid BETWEEN ? AND ? ORDER BY num, at", span
    ):
        new[num].append(at)
    live: list[tuple[int, bytes | None]] = conn.execute(  # with their history so far
        "SELECT r.num, h.times FROM records r LEFT JOIN access_history h ON h.num = r.num"
        " WHERE r.num IN (SELECT num FROM access_log WHERE rowid BETWEEN ? AND ?)",
        span,
    ).fetchall()
    gone = set(new).difference(num for num, _ in live)
    conn.executemany("DELETE FROM record_stats WHERE num = ?", [(num,) for num in gone])
    conn.executemany(
        "INSERT INTO access_history (num, times) VALUES (?, ?)"
        " ON CONFLICT (num) DO UPDATE SET times = excluded.times",
        [(num, _appended(old, new[num])) for num, old in live],
    )
    conn.execute("DELETE FROM access_log WHERE rowid BETWEEN ? AND ?", span)


def pause() -> None:
    """A fold's moment off the interpreter lock, between two steps (the write lock free)."""
    time.sleep(YIELD_SECONDS)


def _paced(cursor: sqlite3.Cursor) -> Iterator[Any]:
    """The rows of ``cursor``, with a pause after every ``YIELD_ROWS`` of them."""
    while rows := cursor.fetchmany(YIELD_ROWS):
        yield from rows
        pause()


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
    together, bounded as a fold would bound them). One statement, so one snapshot: a step
    of a fold committing meanwhile shows its accesses once, in the log or in the history."""
    times: dict[int, list[float]] = {}
    waiting: dict[int, list[float]] = defaultdict(list)
    for num, blob, at in conn.execute(
        "SELECT num, times, NULL FROM access_history UNION ALL"
        " SELECT l.num, NULL, l.at FROM access_log l JOIN records r ON r.num = l.num"
    ):
        if at is None:
            times[int(num)] = unpack(blob)
        else:
            waiting[int(num)].append(float(at))
    for num, ts in waiting.items():
        times[num] = bounded([*times.get(num, ()), *ts])
    return {num: ts for num, ts in sorted(times.items()) if ts}


def times_of(conn: sqlite3.Connection, num: int) -> list[float]:
    """The kept access times of one record (after a fold: the history alone)."""
    row = conn.execute("SELECT times FROM access_history WHERE num = ?", (num,)).fetchone()
    return [] if row is None else unpack(row[0])
