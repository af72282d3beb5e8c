"""A SQLite cache of embeddings keyed by (model_id, content hash), and ``CachedEmbedder``.

The cache lives at ``<data_dir>/embed-cache.db`` in WAL mode, so several MAGRAY processes
can read and write it at once. Vectors are little-endian float32 BLOBs.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from magray.embed.base import Embedder, Vectors
from magray.errors import StoreError
from magray.sqlite_migrations import connect

QUERY_SUFFIX = "#query"
# The first schema was created without bookkeeping; ``IF NOT EXISTS`` adopts such caches.
MIGRATIONS = [
    (
        1,
        "embeddings",
        "CREATE TABLE IF NOT EXISTS embeddings (model_id TEXT NOT NULL,"
        " content_hash TEXT NOT NULL, dim INTEGER NOT NULL, vector BLOB NOT NULL,"
        " PRIMARY KEY (model_id, content_hash)) WITHOUT ROWID;",
    )
]
_CHUNK = 500
log = logging.getLogger("magray")


def _set_aside(path: Path) -> Path:
    """Move a damaged cache to ``<name>.damaged`` (replacing an older one); its WAL goes."""
    aside = path.with_name(path.name + ".damaged")
    path.replace(aside)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return aside


class EmbeddingCache:
    """Vectors by (model_id, content_hash)."""

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self.path = path
        try:
            self._db = self._connect(timeout)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, no folder
                raise StoreError(
                    f"the embedding cache {path} cannot be opened ({exc}); check the folder's"
                    " permissions and free space."
                ) from None
            # Damaged (not a database, malformed): it only saves re-embedding, so it is
            # set aside for inspection and started afresh.
            aside = _set_aside(path)
            log.warning(
                "the embedding cache %s was damaged (%s); it was moved to %s and is rebuilt"
                " as texts are embedded.",
                path,
                exc,
                aside.name,
            )
            try:
                self._db = self._connect(timeout)
            except (OSError, sqlite3.Error) as again:
                raise StoreError(
                    f"the embedding cache {path} cannot be opened ({again}); remove it (it is"
                    " rebuilt as texts are embedded)."
                ) from None
        except OSError as exc:
            raise StoreError(
                f"the embedding cache {path} cannot be opened ({exc}); check the folder's"
                " permissions and free space."
            ) from None
        self._lock = threading.Lock()
        self._warned = False  # a skipped read or write was reported (``_skipped``)

    def _connect(self, timeout: float) -> sqlite3.Connection:
        # A cache: losing its last writes to a power cut only costs re-embedding.
        return connect(
            self.path,
            synchronous="NORMAL",
            check_same_thread=False,
            timeout=timeout,
            migrations=MIGRATIONS,
        )

    def get_many(self, model_id: str, hashes: Sequence[str]) -> dict[str, Vectors]:
        """The cached vectors among ``hashes``; a read the disk fails counts as misses."""
        found: dict[str, Vectors] = {}
        unique = list(dict.fromkeys(hashes))
        with self._lock:
            try:
                for start in range(0, len(unique), _CHUNK):
                    chunk = unique[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        f"SELECT content_hash, dim, vector FROM embeddings"
                        f" WHERE model_id = ? AND content_hash IN ({marks})",
                        (model_id, *chunk),
                    ).fetchall()
                    for digest, dim, blob in rows:
                        vec = np.frombuffer(blob, dtype="<f4")
                        if vec.shape[0] == dim:
                            found[digest] = vec.astype(np.float32)
            except sqlite3.OperationalError as exc:  # locked for long, a disk error
                self._skipped("read", exc)
        return found

    def put_many(self, model_id: str, items: Sequence[tuple[str, Vectors]]) -> None:
        """Keep ``items``; a write that cannot be made (another process holds the lock for
        long, a full disk) is skipped: the cache only saves re-embedding."""
        rows = [
            (model_id, digest, int(v.shape[0]), np.asarray(v, dtype="<f4").tobytes())
            for digest, v in items
        ]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings (model_id, content_hash, dim, vector)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if "locked" not in str(exc):  # another process's long write: skip quietly
                    self._skipped("write", exc)

    def _skipped(self, what: str, exc: sqlite3.Error) -> None:
        """Say once per cache that it is being skipped, and why."""
        if not self._warned:
            self._warned = True
            log.warning(
                "the embedding cache %s could not %s (%s); texts are embedded without it.",
                self.path,
                what,
                exc,
            )

    def count(self, model_id: str | None = None) -> int:
        with self._lock:
            if model_id is None:
                row = self._db.execute("SELECT count(*) FROM embeddings").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM embeddings WHERE model_id = ?", (model_id,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachedEmbedder:
    """Wraps an ``Embedder``: only texts missing from the cache are embedded."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self.inner = inner
        self.cache = cache
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __getattr__(self, name: str) -> object:  # provider, spec, ... of the inner embedder
        return getattr(self.inner, name)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "misses": self.misses}

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.model_id, self.inner.embed_documents)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, self.model_id + QUERY_SUFFIX, self.inner.embed_queries)

    def cached_queries(self, texts: Sequence[str]) -> Vectors | None:
        """The query vectors of ``texts`` when the cache holds them all, else None (nothing
        is embedded): a caller can skip waiting for the model."""
        from magray.hashing import content_hash

        if not texts:
            return None
        hashes = [content_hash(t) for t in texts]
        found = self.cache.get_many(self.model_id + QUERY_SUFFIX, hashes)
        if any(h not in found for h in hashes):
            return None
        self.hits += len(hashes)
        return np.vstack([found[h] for h in hashes]).astype(np.float32, copy=False)

    def _embed(self, texts: Sequence[str], key: str, embed: object) -> Vectors:
        from magray.hashing import content_hash

        assert callable(embed)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        hashes = [content_hash(t) for t in texts]
        found = self.cache.get_many(key, hashes)
        missing: dict[str, str] = {}
        for digest, text in zip(hashes, texts, strict=True):
            if digest not in found and digest not in missing:
                missing[digest] = text
        self.hits += sum(1 for h in hashes if h in found)
        self.misses += len(hashes) - sum(1 for h in hashes if h in found)
        if missing:
            vectors = embed(list(missing.values()))
            fresh = list(zip(missing, vectors, strict=True))
            self.cache.put_many(key, fresh)
            found.update(fresh)
        return np.vstack([found[h] for h in hashes]).astype(np.float32, copy=False)
