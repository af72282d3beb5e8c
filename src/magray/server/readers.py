"""Read-only handles on a tenant's memory, so that the tenant's searches run side by side.

A tenant's memory is one ``Memory`` behind the tenant's lock: writes, lifecycle and
maintenance take turns on it. A search needs none of that. Each reader here is a
``Memory`` of its own over the same store: its own SQLite connection (WAL lets it read
while a writer commits) and the same memory-mapped index files. A write through any handle,
the CLI or another worker lands in the store's index journal, which every search checks
first, so a reader finds a memory added a moment before, by keywords and by meaning.

The recall's heavy parts (SQLite, the HNSW search, numpy) release the GIL, so two readers
keep two cores busy; a search no longer waits behind a long write (a batch, an ingest) of
its tenant either. Readers are opened on first use, up to ``size``; a search that finds
them all busy waits for the first one back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from magray.errors import StoreError

if TYPE_CHECKING:
    from magray.memory.records import Hit, Query
    from magray.memory.service import Memory


class Readers:
    """Up to ``size`` read-only ``Memory`` handles made by ``open_memory``, lent per recall."""

    def __init__(self, open_memory: Callable[[], Memory], size: int) -> None:
        self.size = size
        self._open_memory = open_memory
        self._idle: list[Memory] = []
        self._all: list[Memory] = []
        self._opening = 0
        self._ready = threading.Condition()
        self._closed = False

    def recall(self, query: Query) -> list[Hit]:
        """``Memory.recall`` on an idle reader (one is opened if fewer than ``size`` are)."""
        memory = self._take()
        try:
            return memory.recall(query)
        finally:
            self._give(memory)

    def flush_access(self) -> None:
        """Write the access statistics the readers' recalls buffered (see ``memory.access``)."""
        with self._ready:
            readers = list(self._all)
        for memory in readers:
            memory.flush_access()

    def _take(self) -> Memory:
        with self._ready:
            while True:
                if self._closed:
                    raise StoreError("the server is shutting down; retry the search elsewhere.")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._opening < self.size:
                    self._opening += 1
                    break
                self._ready.wait()
        try:  # opening reads the store and the index files: outside the condition
            memory = self._open_memory()
        except BaseException:
            with self._ready:
                self._opening -= 1
                self._ready.notify()
            raise
        with self._ready:
            self._opening -= 1
            self._all.append(memory)
        return memory

    def _give(self, memory: Memory) -> None:
        with self._ready:
            if not self._closed:
                self._idle.append(memory)
                self._ready.notify()
                return
            self._all.remove(memory)
        memory.close()

    def close(self) -> None:
        """Close the idle readers now, and each busy one when its recall returns."""
        with self._ready:
            self._closed = True
            idle, self._idle = self._idle, []
            for memory in idle:
                self._all.remove(memory)
            self._ready.notify_all()
        for memory in idle:
            memory.close()
