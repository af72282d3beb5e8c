"""Tenants: one :class:`Runtime` per tenant, each over its own data folder.

A tenant's home is ``<data dir>/tenants/<name>/``: its memory store, indexes, tasks,
conversations and LLM usage live there and nowhere else, so no query of tenant A can reach
tenant B's records. Configuration (providers, policy) and the installed models are shared.
One embedder is loaded once and shared by every tenant.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from magray.errors import StoreError
from magray.observability.audit_chain import chain_file
from magray.runtime import Runtime
from magray.server import heap
from magray.server.keys import check_tenant
from magray.server.readers import Readers

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.embed.base import Embedder
    from magray.memory.records import Hit, Query
    from magray.memory.service import Memory

T = TypeVar("T")


def tenant_dir(data_dir: Path, tenant: str) -> Path:
    return data_dir / "tenants" / check_tenant(tenant)


def tenants_on_disk(data_dir: Path) -> list[str]:
    """The names of the tenants with a folder under ``<data dir>/tenants/``, sorted."""
    from magray.server.keys import TENANT_RE

    folder = data_dir / "tenants"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and TENANT_RE.match(p.name))


def tenant_settings(settings: Settings, tenant: str) -> Settings:
    """The settings of ``tenant``: the same values over the tenant's own data folder."""
    paths = dataclasses.replace(
        settings.paths, data_dir=tenant_dir(settings.paths.data_dir, tenant)
    )
    if settings.memory.backend == "postgres":
        # On PostgreSQL a tenant's memory is a schema of its own (docs/scale-out.md).
        from magray.memory.backends.postgres.connection import schema_name

        base = settings.memory.pg_schema
        settings = settings.with_overrides(
            {"memory.pg_schema": schema_name(tenant, base)}, source="tenant"
        )
    return dataclasses.replace(settings, paths=paths)


# What a tenant writes besides its memory: a task, a conversation, an LLM call (the table
# of each SQLite database, by its name in ``magray.paths.DATABASE_FILES``).
WRITTEN = {"tasks": "tasks", "conversations": "conversations", "llm": "calls"}


def has_data(settings: Settings, tenant: str) -> bool:
    """Whether ``tenant`` holds anything written: a memory record, a task, a conversation,
    an LLM call or a backup. Its requests open its stores, so a tenant that only ever read
    has a data folder (and on PostgreSQL a schema) holding none of them: no data.

    Reads the stores as they are, opening none of the tenant's services and creating
    nothing; a database that cannot be read counts as holding data.
    """
    own = tenant_settings(settings, tenant)
    folder = own.paths.data_dir
    if not folder.is_dir():  # never opened: the folder is made whenever a tenant is
        return False
    databases = own.paths.databases()
    if any(_has_rows(databases[db], table) for db, table in WRITTEN.items()):
        return True
    backups = folder / "backups"
    if backups.is_dir() and any(backups.iterdir()):
        return True
    from magray.memory.backends import backend_kind

    return backend_kind(own.memory.backend).holds_records(own)


def _has_rows(db: Path, table: str) -> bool:
    if not db.is_file():
        return False
    import sqlite3

    from magray.sqlite_migrations import read_only

    try:
        with read_only(db) as conn:
            row = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()
    except sqlite3.Error as exc:
        return "no such table" not in str(exc)  # made, not written to yet; else unreadable
    return bool(row and row[0])


def _make_folder(folder: Path, tenant: str) -> None:
    from magray.sqlite_migrations import advice

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"the data folder of tenant {tenant!r} cannot be made ({exc.strerror or exc})"
            f"{advice(exc) or '; check that its parent folders are writable'}."
        ) from None


class Tenant:
    """A tenant's runtime, the lock that serialises work on its store, its readers and its
    LLM thread.

    The LLM router and the conversation log keep SQLite connections that belong to the
    thread that opened them, so every call that touches them runs on the tenant's one LLM
    thread (:meth:`llm`); the memory store may be used from any thread under :attr:`lock`.
    Searches (:meth:`recall`) take none of that: they run on the tenant's readers
    (``server.readers`` read-only handles on the same store), side by side, each on one of
    the tenant's search threads (:meth:`search`), one per reader.
    """

    def __init__(self, name: str, runtime: Runtime, *, readers: int = 0) -> None:
        self.name = name
        self.runtime = runtime
        self.lock = threading.RLock()
        self.readers = Readers(self._open_reader, readers) if readers > 0 else None
        self._llm = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._closed = False
        # One thread per reader: a search waits in this queue, not in a thread of its own
        # blocked on a busy reader, and a thread that finishes a recall takes the next one
        # without waking anything else.
        self._searches = (
            ThreadPoolExecutor(max_workers=readers, thread_name_prefix=f"search-{name}")
            if readers > 0
            else None
        )

    def _open_reader(self) -> Memory:
        memory = self.runtime.open_memory()
        heap.settle()  # a reader lives as long as the tenant: out of the full collections
        return memory

    async def search(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a recall on the readers) on one of the tenant's search threads, in
        the caller's context; without readers on a thread of the server's pool."""
        if self._searches is None:
            from starlette.concurrency import run_in_threadpool

            return await run_in_threadpool(fn, *args)
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the request id of the log lines
        try:
            future = loop.run_in_executor(self._searches, context.run, fn, *args)
        except RuntimeError:  # the executor is shut down: the tenant is closing
            raise StoreError("the server is shutting down; retry the search elsewhere.") from None
        return await future

    @property
    def memory(self) -> Memory:
        """The tenant's memory behind its lock (every method call takes the lock)."""
        before = None if self.readers is None else self.readers.flush_access
        return cast("Memory", Locked(self.runtime.memory, self.lock, before))

    def recall(self, query: Query) -> list[Hit]:
        """``Memory.recall`` on a reader, without the lock; a reranked one (the reranker
        is loaded once, on the tenant's memory) or one without readers under the lock."""
        if self.readers is None or query.rerank:
            return self.memory.recall(query)
        return self.readers.recall(query)

    def llm(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the tenant's LLM thread."""
        return self._llm.submit(fn)

    def close(self) -> None:
        """Finish the searches queued, stop the search threads, close the readers,
        then the runtime on the LLM thread (its connections belong there), then stop it.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True

        def close_runtime() -> None:
            with self.lock:
                self.runtime.close()

        if self._searches is not None:
            self._searches.shutdown(wait=True)
        if self.readers is not None:
            self.readers.close()
        try:
            self._llm.submit(close_runtime).result()
        finally:
            self._llm.shutdown(wait=True)


class Locked:
    """Every method of ``inner`` called under ``lock`` (after ``before``, if given); other
    attributes read through."""

    def __init__(
        self, inner: Any, lock: threading.RLock, before: Callable[[], None] | None = None
    ) -> None:
        self._inner = inner
        self._lock = lock
        self._before = before

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        lock, before = self._lock, self._before

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                if before is not None:  # the readers' access statistics, written first
                    before()
                return value(*args, **kwargs)

        return call


class TenantPool:
    """Opens each tenant's runtime on first use and closes them all at shutdown."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder | None = None,
        *,
        wrap: Callable[[Embedder], Embedder] | None = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._wrap = wrap
        self._tenants: dict[str, Tenant] = {}
        self._lock = threading.Lock()

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from magray.embed import load_embedder

                loaded = load_embedder(self.settings)
                self._embedder = self._wrap(loaded) if self._wrap else loaded
            return self._embedder

    def get(self, name: str) -> Tenant:
        with self._lock:
            tenant = self._tenants.get(name)
            if tenant is not None:
                return tenant
        embedder = self.embedder()
        with self._lock:
            tenant = self._tenants.get(name)
            if tenant is None:
                settings = tenant_settings(self.settings, name)
                _make_folder(settings.paths.data_dir, name)
                runtime = Runtime(
                    settings,
                    embedder=embedder,
                    tenant=name,
                    audit_chain=chain_file(self.settings.paths.data_dir),
                )
                tenant = Tenant(name, runtime, readers=settings.server.readers)
                self._tenants[name] = tenant
        heap.settle()  # the tenant's runtime lives as long as the server
        return tenant

    def opened(self, name: str) -> Tenant | None:
        """The tenant if it is open already (never blocks on opening one)."""
        with self._lock:
            return self._tenants.get(name)

    def open(self) -> Iterator[Tenant]:
        """Each tenant opened so far."""
        with self._lock:
            tenants = list(self._tenants.values())
        yield from tenants

    def embedded(self) -> Embedder | None:
        """The shared embedder if it is loaded (None before the first tenant needs it)."""
        with self._lock:
            return self._embedder

    def close(self) -> None:
        with self._lock:
            tenants, self._tenants = list(self._tenants.values()), {}
            embedder = self._embedder
        for t in tenants:
            t.close()
        closer = getattr(embedder, "close", None)
        if callable(closer):  # the query batcher's thread
            closer()
