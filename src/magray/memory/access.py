"""Access statistics of recalled hits, written off the recall path.

``Memory.recall`` counts one access per returned hit. Writing them is a store transaction
that touches every hit's row, so it does not happen inside the recall: the accesses are
buffered here and a background thread writes them in one transaction once
``FLUSH_COUNT`` are pending or the oldest is ``FLUSH_SECONDS`` old. ``flush`` writes them
at once (``Memory`` does so before the store is used otherwise, on close and at exit).
Like every access statistic they are best effort: a crash loses at most the last second.

What a store keeps of each record's accesses is bounded (``bounded``): its counters (count
and last access, exact) and the times of at most its first ``KEEP_FIRST`` and its last
``KEEP_LAST`` accesses. Promotion reads those times (``lifecycle/promote.py``): training
snapshots look at the first days of a record (the first accesses), decisions at its recent
use (the last ones: the rule's frequency term 1 − e^(−n/4) is saturated long before 32, and
so is a day's count). Accesses dropped in between are counted back from the record's
``access_count`` (``RecordHistory.skipped``), so lifecycle never reads an unbounded log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("magray")

FLUSH_COUNT = 256
FLUSH_SECONDS = 1.0

Events = list[tuple[int, float]]  # (label, unix time) per access
KEEP_FIRST = 32  # access times kept from the start of a record's history
KEEP_LAST = 32  # and from its end
KEPT = KEEP_FIRST + KEEP_LAST
FOLD_AT = 16_384  # accesses appended before a store folds them into the bounded history


def bounded(times: Sequence[float]) -> list[float]:
    """``times`` ascending, without those between the first ``KEEP_FIRST`` and the last
    ``KEEP_LAST``: what a store keeps of one record's access history."""
    ordered = sorted(times)
    if len(ordered) <= KEPT:
        return ordered
    return [*ordered[:KEEP_FIRST], *ordered[-KEEP_LAST:]]


class AccessBuffer:
    """Pending (label, time) accesses and the thread that writes them with ``write``."""

    def __init__(
        self,
        write: Callable[[Sequence[tuple[int, float]]], None],
        *,
        count: int = FLUSH_COUNT,
        seconds: float = FLUSH_SECONDS,
    ) -> None:
        self._write = write
        self._count = count
        self._seconds = seconds
        self._events: Events = []
        self._since = 0.0  # when the oldest pending access was added
        self._lock = threading.Lock()  # guards _events
        self._writing = threading.Lock()  # one write at a time
        self._wake = threading.Event()
        # Whether the thread waits without a deadline (nothing pending, no recent flush): only
        # then does the first access of a batch wake it. Otherwise it wakes by itself when the
        # oldest access is due, and a stream of recalls hands it the GIL once per batch (when
        # it is full), not twice.
        self._idle = True  # guarded by _lock
        self._thread: threading.Thread | None = None
        self._closed = False

    def __bool__(self) -> bool:
        return bool(self._events)

    def add(self, labels: Sequence[int], at: float) -> None:
        """Buffer one access at ``at`` per label (cheap: no I/O)."""
        if not labels:
            return
        with self._lock:
            first = not self._events
            if first:
                self._since = time.monotonic()
            self._events.extend([(num, at) for num in labels])
            full = len(self._events) >= self._count
            wake = full or (first and self._idle)
            start = self._thread is None and not self._closed
            if start:
                self._thread = threading.Thread(
                    target=self._run, name="magray-access-stats", daemon=True
                )
        if start and self._thread is not None:
            self._thread.start()
        if wake:
            self._wake.set()

    def flush(self) -> None:
        """Write every pending access now (one transaction); errors are logged, not raised."""
        with self._writing:
            with self._lock:
                events, self._events = self._events, []
            if not events:
                return
            try:
                self._write(events)
            except Exception as exc:  # statistics never fail the caller
                log.debug("access statistics not written: %s", exc)

    def close(self) -> None:
        """Stop the thread and write what is pending."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()

    def _due(self) -> bool:
        with self._lock:
            pending = len(self._events)
            return pending >= self._count or (
                pending > 0 and time.monotonic() - self._since >= self._seconds
            )

    def _run(self) -> None:
        linger = False  # after a flush, more accesses are likely: wait with a deadline
        while not self._closed:
            with self._lock:
                if self._events:  # until the oldest is due
                    timeout: float | None = max(0.0, self._since + self._seconds - time.monotonic())
                else:
                    timeout = self._seconds if linger else None
                self._idle = timeout is None
            woke = self._wake.wait(timeout)
            self._wake.clear()
            if self._closed:
                return
            if self._due():
                self.flush()
                linger = True
            elif not woke and not self:
                linger = False  # a quiet spell: sleep until the next access wakes it
