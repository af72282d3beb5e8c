"""The derived HNSW vector index: one usearch file per model and scalar type.

The store (SQLite) is the source of truth for records; the file holds their vectors, which
the store keeps too until a saved file holds them (``vector_backlog``). Each file has a
JSON sidecar describing it (:class:`~.index_file.IndexState`); how a save stays safe and
how :meth:`VectorIndex.open` tells a damaged or half-saved pair is in ``index_file``.

Library and parameters (``docs/benchmarks.md``, ``benchmarks/vector_index.py``): usearch,
cosine similarity, ``CONNECTIVITY`` 16 and ``EXPANSION_ADD`` 128. Up to ``EXACT_LIMIT`` vectors
a search is brute force (recall 1.0, about as fast as the graph at that size); above, the
search expansion grows with the index size (:func:`expansion_for`) so that recall@10
stays at or above 0.95 on embedding-like data.

Metric: vectors are normalised on the way in (queries by the caller or :meth:`search`), so
``f32`` and ``f16`` files are searched with the inner product, which equals the cosine on
unit vectors and costs half the SIMD work of usearch's cosine kernel (about half the time of
a search; ``_use_inner_product``). ``i8`` keeps the cosine kernel: usearch's integer inner
product is not scaled back to a cosine. Files written by either metric read the same.

Quantization: ``f16`` halves the file at no measurable recall cost; ``i8`` quarters it but
loses recall, so callers over-fetch :meth:`VectorIndex.candidates` labels and rescore them
with the exact f32 vectors from the store before cutting to ``k``.

Concurrency: one writer per file (the store's writer lock); any number of readers open the
saved file read-only as a memory-mapped view, which a writer's ``os.replace`` never
disturbs. One ``VectorIndex`` object may be shared by threads (a lock serialises calls).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import DimensionMismatchError, IndexCorruptError, UsageError
from magray.memory.backends.sqlite.index_file import (
    IndexState,
    finish_save,
    identity,
    keys_of,
    label_checksum,
    read_sidecar,
    save_pair,
    sha256_file,
    xor_labels,
)

__all__ = ["IndexState", "VectorIndex", "expansion_for", "label_checksum"]

DTYPES = ("f32", "f16", "i8")
CONNECTIVITY = 16  # graph degree (M): 16 is the recall/size sweet spot in the benchmark
EXPANSION_ADD = 128  # ef_construction: build quality; build ~1 ms/vector on one core
# Brute force below this size: recall 1.0. Recall asks for at least 200 candidates (the
# normalisation pool), where the graph (ef 400) is no faster than brute force at 5K vectors
# (0.65 vs 0.67 ms) and misses a few of them, which moves the normalisation anchor: SciFact
# (5,183 documents) loses 0.0012 nDCG@10 in vector mode and 0.0004 in hybrid. Kept below
# 10K, where the graph is measured (``magray bench memory``).
EXACT_LIMIT = 8_000
#: batches at least this many vectors (a bulk add, a fold, a rebuild) are added on every
#: core: usearch inserts concurrently; a single add stays on the caller's thread count
BUILD_BATCH = 256

# Search expansion (ef) as a function of size, from ``magray bench memory`` (clustered
# vectors with a low intrinsic dimension, like sentence embeddings): on 100K such vectors
# in one f16 index, usearch reaches recall@10 0.973 at ef 16, 0.984 at ef 32 and 0.994 at
# ef 64. MAGRAY keeps that margin with ef 32 at 10K growing as N**0.3 (64 at 100K, ~128 at
# 1M), capped at EF_MAX. Harder data (nearly isotropic vectors) needs more: set
# ``memory.search_ef`` to fix ef by hand.
EF_BASE = 32  # ef at N = 10K
EF_EXPONENT = 0.3
EF_MAX = 2048
I8_OVERFETCH = 4  # i8: fetch 4 k candidates, rescore in f32 (recall@10 back >= 0.95)

Labels = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


# Whether opening an index first imports ONNX Runtime (see ``_usearch_index``). A process
# that never runs an ONNX model (an embedder seam, a benchmark) turns it off with
# ``preload_onnxruntime(False)`` and saves the import.
_PRELOAD = True


def preload_onnxruntime(enabled: bool) -> None:
    """Choose whether the first index opened imports ONNX Runtime before usearch."""
    global _PRELOAD
    _PRELOAD = enabled


def _usearch_index() -> Any:
    """usearch's ``Index`` class, imported after ONNX Runtime (unless preloading is off).

    Importing ``onnxruntime`` *after* usearch's SIMD library (numkong) crashes the process
    with a segmentation fault (onnxruntime 1.32 with usearch 2.26 / numkong 7.8); the other
    order is fine. MAGRAY imports ONNX Runtime lazily, so the index makes sure it comes first.
    """
    if _PRELOAD:
        with contextlib.suppress(ImportError):
            import onnxruntime  # noqa: F401
    from usearch.index import Index

    return Index


#: scalar types searched with the inner product of unit vectors instead of the cosine
INNER_PRODUCT_DTYPES = ("f32", "f16")


def _use_inner_product(index: Any, dtype: str) -> Any:
    """Switch ``index`` (new or loaded, a view included) to the inner product where it
    equals the cosine (see the module docstring); the graph is unchanged."""
    if dtype in INNER_PRODUCT_DTYPES:
        from usearch.compiled import MetricKind

        index.metric = MetricKind.IP
    return index


#: a row whose length is this close to 1 is left as it is: its inner products are cosines
#: to within that, and the file keeps the very bits the store keeps (``vector_backlog``)
UNIT_TOLERANCE = 1e-5


def unit_rows(vectors: Vectors) -> Vectors:
    """``vectors`` with every non-zero row scaled to length 1 (rows already of length 1,
    within ``UNIT_TOLERANCE``, are returned bit for bit)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    scale = (norms > 0) & (np.abs(norms - 1.0) > UNIT_TOLERANCE)
    out: Vectors = np.divide(vectors, norms, out=np.array(vectors, dtype=np.float32), where=scale)
    return out


def expansion_for(n: int, k: int, fixed: int = 0, layers: int = 1) -> int:
    """Search expansion (ef) for an index of ``n`` vectors asked for ``k`` results.

    ``layers`` is how many per-layer indexes one recall merges into its top ``k``: each
    holds only about ``k / layers`` of it, which a smaller ef finds as reliably, so the
    size-based ef is divided by ``sqrt(layers)``. The ef is never below ``k`` (a deep
    candidate list for fusion needs no wider search than its length). ``fixed`` > 0
    replaces the size-based choice (still at least ``k``).
    """
    if fixed > 0:
        return int(max(fixed, k))
    ef = math.ceil(EF_BASE * max(1.0, n / 10_000) ** EF_EXPONENT / math.sqrt(max(1, layers)))
    return int(min(EF_MAX, max(ef, k)))


def candidates_for(dtype: str, k: int) -> int:
    """How many labels to fetch from an index of ``dtype`` to rescore down to ``k``."""
    return k * I8_OVERFETCH if dtype == "i8" else k


class VectorIndex:
    """An HNSW index of L2-normalised vectors keyed by int64 labels (cosine similarity)."""

    def __init__(
        self, path: Path, index: Any, state: IndexState, *, writable: bool, threads: int
    ) -> None:
        """Use :meth:`create` or :meth:`open`."""
        self.path = path
        self._index = index
        self._state = state
        self._checksum = int(state.label_checksum, 16)
        self._writable = writable
        self.threads = threads
        self.ef = 0  # search expansion; 0 = chosen from the size (``expansion_for``)
        self._lock = threading.RLock()
        # usearch's compiled search, called directly (the wrapper builds result objects)
        compiled = getattr(index, "_compiled", None)
        self._search_many: Any = getattr(compiled, "search_many", None) or self._wrapped_search

    # -- construction ------------------------------------------------------------------
    @staticmethod
    def _check_params(dim: int, dtype: str) -> None:
        if dtype not in DTYPES:
            raise UsageError(f"vector dtype must be one of {', '.join(DTYPES)}, not {dtype!r}.")
        if dim <= 0:
            raise UsageError(f"vector dimension must be positive, not {dim}.")

    @classmethod
    def create(
        cls, path: Path, *, model_id: str, dim: int, dtype: str = "f32", threads: int = 1
    ) -> VectorIndex:
        """A new empty, writable index that :meth:`save` will write to ``path``."""
        Index = _usearch_index()

        cls._check_params(dim, dtype)
        index = Index(
            ndim=dim,
            metric="cos",
            dtype=dtype,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
        )
        _use_inner_product(index, dtype)
        state = IndexState(model_id, dim, dtype, 0, 0, f"{0:016x}", "")
        return cls(Path(path), index, state, writable=True, threads=threads)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        model_id: str,
        dim: int,
        dtype: str,
        writable: bool,
        threads: int = 1,
        verify: bool | None = None,
    ) -> VectorIndex:
        """Open a saved index; raise ``IndexCorruptError`` if it cannot be trusted.

        Read-only opens memory-map the file (a few ms at any size). The sha256 of the
        file is checked when ``verify`` is true, and by default (``None``) whenever the
        index is opened writable or the file is not the very file the sidecar was
        written with (its inode, size and times differ, as after a crash between the two
        writes or a copy); a read-only open of an untouched pair skips the hash.
        """
        cls._check_params(dim, dtype)
        path = Path(path)
        if writable:  # the writer lock is held: finish (or clear) an interrupted save
            finish_save(path)
        for _attempt in range(3):
            state, ident = read_sidecar(path)
            if (state.model_id, state.dim, state.dtype) != (model_id, dim, dtype):
                raise IndexCorruptError(
                    f"the vector index {path.name} was built for {state.model_id}"
                    f" ({state.dim}-d {state.dtype}), not {model_id} ({dim}-d {dtype})."
                )
            try:
                before = os.stat(path)
            except FileNotFoundError:
                raise IndexCorruptError(f"the vector index file {path} is missing.") from None
            check = verify if verify is not None else writable or identity(before) != ident
            if check and sha256_file(path) != state.file_sha256:
                if read_sidecar(path)[0] != state:
                    continue  # a writer saved meanwhile: read the new pair
                raise IndexCorruptError(
                    f"the vector index file {path.name} does not match its sidecar"
                    " (damaged, or an interrupted save)."
                )
            index = cls._load(path, writable=writable)
            if identity(os.stat(path)) != identity(before):
                continue  # replaced while loading: start again
            cls._check_loaded(path, index, state, full=check)
            _use_inner_product(index, dtype)
            return cls(path, index, state, writable=writable, threads=threads)
        raise IndexCorruptError(f"the vector index {path.name} kept changing while being opened.")

    @staticmethod
    def _load(path: Path, *, writable: bool) -> Any:
        Index = _usearch_index()

        try:
            index = Index.restore(str(path), view=not writable)
        except (ValueError, RuntimeError, OSError) as exc:
            raise IndexCorruptError(
                f"the vector index file {path.name} is unreadable ({exc})."
            ) from None
        if index is None:
            raise IndexCorruptError(f"the vector index file {path.name} is not a usearch index.")
        return index

    @staticmethod
    def _check_loaded(path: Path, index: Any, state: IndexState, *, full: bool) -> None:
        found = (int(index.ndim), str(index.dtype).rsplit(".", 1)[-1].lower(), len(index))
        if found != (state.dim, state.dtype, state.count):
            raise IndexCorruptError(
                f"the vector index file {path.name} holds {found[2]} {found[0]}-d {found[1]}"
                f" vectors but its sidecar says {state.count} {state.dim}-d {state.dtype}."
            )
        if full:
            keys = np.asarray(index.keys, dtype=np.uint64)
            if f"{xor_labels(keys):016x}" != state.label_checksum:
                raise IndexCorruptError(
                    f"the labels in {path.name} do not match its sidecar's checksum."
                )

    # -- facts -------------------------------------------------------------------------
    @property
    def state(self) -> IndexState:
        """The current state (count and checksum follow every add/remove)."""
        with self._lock:
            return replace(
                self._state, count=len(self._index), label_checksum=f"{self._checksum:016x}"
            )

    @property
    def writable(self) -> bool:
        return self._writable

    @property
    def expansion_search(self) -> int:
        """The ef a top-10 search uses at the current size (0 when searched exactly)."""
        n = len(self)
        return 0 if n <= EXACT_LIMIT else expansion_for(n, 10, self.ef)

    def set_applied_seq(self, seq: int) -> None:
        """Record the store journal sequence the index reflects (persisted by save)."""
        with self._lock:
            self._state = replace(self._state, applied_seq=int(seq))

    def candidates(self, k: int) -> int:
        """How many labels to ask :meth:`search` for when rescoring down to ``k`` in f32."""
        return candidates_for(self._state.dtype, k)

    def labels(self) -> Labels:
        """The live labels, in no particular order."""
        with self._lock:
            return np.asarray(self._index.keys, dtype=np.uint64).astype(np.int64)

    def __len__(self) -> int:
        return len(self._index)

    def contains(self, labels: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Whether each of ``labels`` is in the index."""
        keys = keys_of(labels)
        if len(keys) == 0:
            return np.zeros(0, dtype=bool)
        with self._lock:
            return np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)

    def __contains__(self, label: object) -> bool:
        if not isinstance(label, int | np.integer) or int(label) < 0:
            return False
        return bool(self._index.contains(int(label)))

    # -- writes ------------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self._writable:
            raise UsageError(
                f"the vector index {self.path.name} was opened read-only; open it writable."
            )

    def add(self, labels: npt.ArrayLike, vectors: npt.ArrayLike) -> None:
        """Insert vectors under labels; a label already present is replaced (upsert).

        Vectors are float32 rows of the index dimension, normalised here (the store's are
        already). If a label repeats within one call, its last vector wins.
        """
        keys = keys_of(labels)
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim == 1:
            vecs = vecs.reshape(1, -1)
        if vecs.ndim != 2 or vecs.shape[1] != self._state.dim:
            raise DimensionMismatchError(
                f"vectors have shape {vecs.shape}, the index holds {self._state.dim}-d vectors."
            )
        if len(vecs) != len(keys):
            raise UsageError(f"{len(keys)} labels given for {len(vecs)} vectors.")
        if len(keys) == 0:
            return
        with self._lock:
            self._require_writable()
            uniq, first_in_reversed = np.unique(keys[::-1], return_index=True)
            if len(uniq) != len(keys):
                rows = len(keys) - 1 - first_in_reversed
                keys, vecs = keys[rows], vecs[rows]
            present = np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self._index.remove(keys[present])
            threads = 0 if len(keys) >= BUILD_BATCH else self.threads
            self._index.add(keys, unit_rows(vecs), threads=threads)
            self._checksum ^= xor_labels(keys[~present])

    def remove(self, labels: npt.ArrayLike) -> None:
        """Remove labels; labels not in the index are ignored."""
        keys = np.unique(keys_of(labels))
        if len(keys) == 0:
            return
        with self._lock:
            self._require_writable()
            present = np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self._index.remove(keys[present])
                self._checksum ^= xor_labels(keys[present])

    def save(self) -> None:
        """Write the index and its sidecar durably (``index_file.save_pair``)."""
        with self._lock:
            self._require_writable()
            self._state = save_pair(self._index, self.path, self.state)

    # -- reads -------------------------------------------------------------------------
    def search_keys(
        self, query: Vectors, count: int, ef: int
    ) -> tuple[npt.NDArray[np.uint64], Vectors]:
        """Raw labels (uint64) and cosines of the ``count`` nearest to one contiguous unit
        float32 query ``(dim,)``, best first, searched with expansion ``ef`` (exactly while
        the index holds at most ``EXACT_LIMIT`` vectors): the hot path of recall."""
        with self._lock:
            n = len(self._index)
            count = min(int(count), n)
            if count <= 0:
                return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
            exact = n <= EXACT_LIMIT
            if not exact and self._index.expansion_search != ef:
                self._index.expansion_search = ef
            keys, dist, counts = self._search_many(
                query.reshape(1, -1), count=count, exact=exact, threads=self.threads
            )[:3]
        c = int(counts[0])
        return keys[0, :c], 1.0 - dist[0, :c]

    def _wrapped_search(
        self, q: Vectors, *, count: int, exact: bool, threads: int
    ) -> tuple[Any, Any, Any]:
        found = self._index.search(q, count, threads=threads, exact=exact)
        keys = np.asarray(found.keys, dtype=np.uint64).reshape(1, -1)
        dist = np.asarray(found.distances, dtype=np.float32).reshape(1, -1)
        return keys, dist, np.asarray([keys.shape[1]])

    def vectors_of(self, labels: npt.ArrayLike) -> Vectors:
        """The stored vectors of ``labels`` (all present) as float32 rows, in order."""
        keys = keys_of(labels)
        with self._lock:
            if len(keys) == 0:
                return np.zeros((0, self._state.dim), dtype=np.float32)
            got = self._index.get(keys, dtype=np.float32)
        return np.asarray(got, dtype=np.float32).reshape(len(keys), self._state.dim)

    def search(self, query: npt.ArrayLike, k: int) -> list[tuple[Labels, Vectors]]:
        """The ``k`` nearest labels and their cosine similarities per query, best first.

        ``query`` is one vector ``(dim,)`` or a batch ``(n, dim)``; the answer has one
        ``(labels, similarities)`` pair per query, shorter than ``k`` when the index holds
        fewer vectors.
        """
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        if q.ndim != 2 or q.shape[1] != self._state.dim:
            raise DimensionMismatchError(
                f"query has shape {q.shape}, the index holds {self._state.dim}-d vectors."
            )
        q = unit_rows(q)
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))
        with self._lock:
            n = len(self._index)
            count = min(int(k), n)
            if count <= 0 or len(q) == 0:
                return [empty for _ in range(len(q))]
            exact = n <= EXACT_LIMIT
            if not exact:
                self._index.expansion_search = expansion_for(n, count, self.ef)
            found = self._index.search(q, count, threads=self.threads, exact=exact)
        keys = np.asarray(found.keys, dtype=np.uint64).reshape(len(q), -1)
        dist = np.asarray(found.distances, dtype=np.float32).reshape(len(q), -1)
        counts = np.asarray(getattr(found, "counts", [keys.shape[1]]), dtype=np.int64)
        out: list[tuple[Labels, Vectors]] = []
        for row, c in enumerate(counts.reshape(-1).tolist()):
            out.append((keys[row, :c].astype(np.int64), (1.0 - dist[row, :c]).astype(np.float32)))
        return out
