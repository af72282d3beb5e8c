"""Query embeddings of concurrent searches, made together and ahead of the tenant's lock.

A search embeds its query inside the memory's recall, under the tenant's lock, one query
at a time. The server instead asks :meth:`QueryBatcher.embed_ahead` first, outside the
lock: one thread embeds every query that is waiting in a single model call (a batch of 16
short queries costs about half the CPU per query of 16 single calls), and the vector is
kept until the recall asks for the same text through :meth:`QueryBatcher.embed_queries`.
Each query is still embedded by the model (or found in the embedding cache) once per
request; nothing is shared between requests except a batch.

Documents, and queries nobody embedded ahead (``ask``, runs), go straight to the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from magray.embed.base import Embedder, Vectors

MAX_BATCH = 32  # queries per model call
MAX_KEPT = 4096  # vectors embedded ahead and not asked for yet (a failed request's)


class _Job:
    __slots__ = ("done", "error", "notify", "text", "vector")

    def __init__(self, text: str, notify: Callable[[], None] | None = None) -> None:
        self.text = text
        self.done = threading.Event()
        self.notify = notify  # called from the embedding thread when the job is done
        self.vector: Any = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        self.done.set()
        if self.notify is not None:
            self.notify()


class QueryBatcher:
    """An ``Embedder`` over ``inner`` whose query vectors can be made ahead, in batches."""

    def __init__(self, inner: Embedder, max_batch: int = MAX_BATCH) -> None:
        self.inner = inner
        self.max_batch = max_batch
        self._jobs: list[_Job] = []
        self._wake = threading.Condition()
        self._kept: OrderedDict[str, list[Any]] = OrderedDict()
        self._kept_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # model calls made for queries embedded ahead
        self.embedded = 0  # queries embedded ahead

    @property
    def model_id(self) -> str:
        return str(self.inner.model_id)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def __getattr__(self, name: str) -> Any:  # cache stats, spec, ... of the inner embedder
        return getattr(self.inner, name)

    # -- the Embedder protocol -------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self.inner.embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts``: those embedded ahead are taken (once each), the rest made."""
        found: dict[int, Any] = {}
        with self._kept_lock:
            for i, text in enumerate(texts):
                waiting = self._kept.get(text)
                if waiting:
                    found[i] = waiting.pop()
                    if not waiting:
                        del self._kept[text]
        if len(found) == len(texts):
            if not texts:
                return self.inner.embed_queries(texts)
            return np.vstack([found[i] for i in range(len(texts))]).astype(np.float32, copy=False)
        missing = [i for i in range(len(texts)) if i not in found]
        made = self.inner.embed_queries([texts[i] for i in missing])
        for i, vector in zip(missing, made, strict=True):
            found[i] = vector
        return np.vstack([found[i] for i in range(len(texts))]).astype(np.float32, copy=False)

    # -- ahead of the lock -----------------------------------------------------------------
    def embed_ahead(self, text: str) -> None:
        """Embed ``text`` now, batched with the other waiting queries; the next
        ``embed_queries`` of this text takes the vector. Raises what the model raises."""
        job = _Job(text)
        if self._submit(job):
            job.done.wait()
            self._keep(job)

    async def embed_ahead_async(self, text: str) -> None:
        """:meth:`embed_ahead` for the event loop: no thread waits for the batch."""
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def settle() -> None:
            if not ready.done():
                ready.set_result(None)

        def notify() -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle)

        job = _Job(text, notify)
        if self._submit(job):
            await ready
            self._keep(job)

    def ahead_from_cache(self, text: str) -> bool:
        """Keep the vector of ``text`` for the recall when the inner embedder has it cached
        (``cached_queries``); False when it must be embedded. It reads the cache: call it
        off the event loop."""
        peek = getattr(self.inner, "cached_queries", None)
        vectors = None if peek is None else peek([text])
        if vectors is None:
            return False
        job = _Job(text)
        job.vector = vectors[0]
        self._keep(job)
        return True

    def _submit(self, job: _Job) -> bool:
        with self._wake:
            if self._closed:
                return False  # shutting down: the recall embeds the query itself
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="query-embedder", daemon=True
                )
                self._thread.start()
            self._wake.notify()
        return True

    def _keep(self, job: _Job) -> None:
        if job.error is not None:
            raise job.error
        with self._kept_lock:
            self._kept.setdefault(job.text, []).append(job.vector)
            self._kept.move_to_end(job.text)
            while len(self._kept) > MAX_KEPT:
                self._kept.popitem(last=False)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if not self._jobs:
                    return  # closed and drained
                batch = self._jobs[: self.max_batch]
                del self._jobs[: self.max_batch]
            try:
                vectors = self.inner.embed_queries([job.text for job in batch])
            except BaseException as exc:  # each waiting request raises it as its own
                for job in batch:
                    job.error = exc
                    job.finish()
                continue
            self.batches += 1
            self.embedded += len(batch)
            for job, vector in zip(batch, vectors, strict=True):
                job.vector = vector
                job.finish()

    def close(self) -> None:
        """Finish the waiting queries, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
