"""Keeps the derived HNSW files in step with the store.

Each layer has one index file per (model, dtype). The file records the store's
``index_journal`` sequence it reflects. On open:

- a missing or damaged file, a file for another model/dimension, or a file *ahead* of the
  store (a restored or rolled-back database) is rebuilt from the store, with a warning;
- journal entries after the file's sequence are the normal backlog of recent writes: they are
  searched exactly (brute force over their vectors) until there are enough of them to fold
  into the file, which happens under the writer lock and is then verified by count.

Search results are always re-read from SQLite with the caller's filters, so a stale label
in a file can never surface a record that moved or was deleted.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from magray.errors import IndexCorruptError, StoreLockedError
from magray.memory.backends.sqlite.store import Store
from magray.memory.backends.sqlite.vector_index import VectorIndex
from magray.memory.records import Filters, Layer

log = logging.getLogger("magray")

FOLD_THRESHOLD = 256  # backlog size at which pending vectors are folded into the file
EXACT_FILTER_LIMIT = 20_000  # filtered sets up to this size are searched exactly

Warn = Callable[[str], None]


def decode(blob: bytes, dim: int) -> npt.NDArray[np.float32]:
    vec = np.frombuffer(blob, dtype="<f4")
    if vec.shape[0] != dim:
        raise IndexCorruptError(f"a stored vector has {vec.shape[0]} dimensions, expected {dim}.")
    return vec.astype(np.float32, copy=False)


def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)


@dataclass
class _LayerState:
    index: VectorIndex
    pending_labels: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(0, dtype=np.int64)
    )
    pending_vectors: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32)
    )
    pending_gone: frozenset[int] = frozenset()  # labels the file still holds but must not return
    stale: frozenset[int] = frozenset()  # file labels a search skips: re-added or gone
    seen_head: int = -1  # the journal head when the backlog was read


class IndexSet:
    """The vector indexes of one store for one embedding model."""

    def __init__(
        self,
        store: Store,
        index_dir: Path,
        *,
        model_id: str,
        dim: int,
        dtype: str,
        warn: Warn | None = None,
        ef: int = 0,
    ) -> None:
        self.store = store
        self.ef = ef
        self.index_dir = index_dir
        self.model_id = model_id
        self.dim = dim
        self.dtype = dtype
        self._warn = warn or (lambda msg: log.warning("%s", msg))
        self._layers: dict[Layer, _LayerState] = {}

    def path(self, layer: Layer) -> Path:
        return self.index_dir / f"{layer}.{_slug(self.model_id)}.{self.dtype}.usearch"

    # -- opening -------------------------------------------------------------------------
    def _open(self, layer: Layer) -> _LayerState:
        state = self._layers.get(layer)
        if state is not None:
            return state
        path = self.path(layer)
        index: VectorIndex | None = None
        try:
            index = VectorIndex.open(
                path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=False
            )
            # the head read after the file: a writer commits before it saves the index
            if index.state.applied_seq > self.store.journal_head():
                self._warn(
                    f"the {layer} vector index is newer than the store (restored database?);"
                    " rebuilding it from the store."
                )
                index = None
        except IndexCorruptError as exc:
            # No file yet is the normal state of a new store: build it quietly.
            if path.exists() or Path(str(path) + ".json").exists():
                index = self._open_after_writer(path)
                if index is None:
                    self._warn(f"the {layer} vector index is unusable ({exc}); rebuilding it.")
        if index is None:
            index = self._rebuild(layer)
        state = _LayerState(index=index)
        self._layers[layer] = state
        with self._snapshot():  # backlog and count from one state of the store
            self._load_backlog(layer, state)
            live, expected = self._live_count(state), self._expected_count(layer)
        if live != expected:
            self._warn(
                f"the {layer} vector index disagrees with the store"
                f" ({live} vectors, {expected} expected); rebuilding it."
            )
            with self.store.locked():
                state = _LayerState(index=self._rebuild(layer))
            self._layers[layer] = state
            self._load_backlog(layer, state)
        if len(state.pending_labels) >= FOLD_THRESHOLD:
            self._try_fold(layer)
            state = self._layers[layer]
        return state

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store, whatever writers commit meanwhile."""
        conn = self.store.conn
        if conn.in_transaction:  # already inside one (a writer's own transaction)
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def _open_after_writer(self, path: Path) -> VectorIndex | None:
        """Open ``path`` again once no writer is saving it; None if it is still unusable.

        A writer saves the index file, then its sidecar, under the writer lock: a reader in
        between (say, while the first writer creates the file) sees a pair that does not
        match. Waiting for the lock lets that save finish; a damaged file stays damaged.
        """
        try:
            with self.store.locked():
                index = VectorIndex.open(
                    path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=False
                )
        except (IndexCorruptError, StoreLockedError):
            return None
        return index if index.state.applied_seq <= self.store.journal_head() else None

    @staticmethod
    def _live_count(state: _LayerState) -> int:
        """Vectors a search of ``state`` can return: the file plus backlog, minus removals."""
        index = state.index
        added = sum(1 for label in state.pending_labels.tolist() if label not in index)
        removed = sum(1 for label in state.pending_gone if label in index)
        return len(index) + added - removed

    def _expected_count(self, layer: Layer) -> int:
        row = self.store.conn.execute(
            "SELECT COUNT(*) FROM records WHERE layer = ? AND embedding_model = ?"
            " AND vector IS NOT NULL",
            (str(layer), self.model_id),
        ).fetchone()
        return int(row[0])

    def _current_vectors(
        self, layer: Layer, nums: list[int]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Labels among ``nums`` that now hold a vector of this model in ``layer``."""
        labels: list[int] = []
        vectors: list[npt.NDArray[np.float32]] = []
        for i in range(0, len(nums), 500):
            chunk = nums[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for num, blob in self.store.conn.execute(  # by label: not through the layer index
                "SELECT num, vector FROM records NOT INDEXED WHERE layer = ?"
                f" AND embedding_model = ? AND vector IS NOT NULL AND num IN ({marks})",
                [str(layer), self.model_id, *chunk],
            ):
                labels.append(int(num))
                vectors.append(decode(blob, self.dim))
        if not labels:
            return np.zeros(0, dtype=np.int64), np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(labels, dtype=np.int64), np.vstack(vectors)

    def _load_backlog(self, layer: Layer, state: _LayerState) -> None:
        state.seen_head = self.store.journal_head()  # first: a later commit is read again
        entries = self.store.journal_since(layer, state.index.state.applied_seq)
        touched = list(dict.fromkeys(num for _, num, _ in entries))
        state.pending_labels, state.pending_vectors = self._current_vectors(layer, touched)
        state.pending_gone = frozenset(touched) - frozenset(state.pending_labels.tolist())
        state.stale = frozenset(touched)

    # -- rebuild and fold (writers) ------------------------------------------------------
    def _rebuild(self, layer: Layer) -> VectorIndex:
        head = self.store.journal_head()
        path = self.path(layer)
        index = VectorIndex.create(path, model_id=self.model_id, dim=self.dim, dtype=self.dtype)
        last = 0
        while True:
            rows = self.store.conn.execute(
                "SELECT num, vector FROM records WHERE layer = ? AND embedding_model = ?"
                " AND vector IS NOT NULL AND num > ? ORDER BY num LIMIT 2048",
                (str(layer), self.model_id, last),
            ).fetchall()
            if not rows:
                break
            labels = np.asarray([r[0] for r in rows], dtype=np.int64)
            index.add(labels, np.vstack([decode(r[1], self.dim) for r in rows]))
            last = int(rows[-1][0])
        index.set_applied_seq(head)
        self._save_if_possible(index)
        return index

    def _save_if_possible(self, index: VectorIndex) -> bool:
        """Persist ``index`` if this process can hold the writer lock right now."""
        try:
            with self.store.locked(timeout=0 if not self.store.lock_held else None):
                self.index_dir.mkdir(parents=True, exist_ok=True)
                index.save()
                return True
        except StoreLockedError:
            return False

    def _try_fold(self, layer: Layer) -> None:
        try:
            with self.store.locked(timeout=0 if not self.store.lock_held else None):
                self.fold(layer)
        except StoreLockedError:
            pass  # another writer is busy; keep searching the backlog exactly

    def fold(self, layer: Layer) -> None:
        """Apply the journal backlog to the file and save it; verify the count afterwards."""
        path = self.path(layer)
        head = self.store.journal_head()
        try:
            index = VectorIndex.open(
                path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=True
            )
        except IndexCorruptError:
            index = self._rebuild(layer)
        entries = self.store.journal_since(layer, index.state.applied_seq)
        touched = list(dict.fromkeys(num for _, num, _ in entries))
        if touched:
            labels, vectors = self._current_vectors(layer, touched)
            gone = np.setdiff1d(np.asarray(touched, dtype=np.int64), labels)
            if len(gone):
                index.remove(gone)
            if len(labels):
                index.add(labels, vectors)
        index.set_applied_seq(head)
        if len(index) != self._expected_count(layer):
            self._warn(
                f"the {layer} vector index held {len(index)} vectors but the store has"
                f" {self._expected_count(layer)}; rebuilding it."
            )
            index = self._rebuild(layer)
        else:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            index.save()
        self._layers[layer] = _LayerState(index=index)
        self._load_backlog(layer, self._layers[layer])

    def sync(self) -> None:
        """Fold every layer's backlog now (after bulk writes)."""
        with self.store.locked():
            for layer in Layer:
                self._layers.pop(layer, None)
                self.fold(layer)

    def rebuild_all(self) -> None:
        with self.store.locked():
            for layer in Layer:
                self._layers[layer] = _LayerState(index=self._rebuild(layer))

    # -- search --------------------------------------------------------------------------
    def search(
        self, layer: Layer, query: npt.NDArray[np.float32], k: int, filters: Filters
    ) -> list[tuple[int, float]]:
        """Up to ``k`` (label, cosine) candidates of ``layer``, best first.

        Labels are candidates only: the caller re-reads them from SQLite with ``filters``.
        """
        if filters.selective:
            layer_filters = dataclasses.replace(filters, layers=(layer,))
            if self.store.count(layer_filters) <= EXACT_FILTER_LIMIT:
                return self._exact_filtered(layer_filters, query, k)
        state = self._current(layer, self._layers.get(layer) or self._open(layer))
        fetch = k * (4 if filters.active else 1)
        found: list[tuple[int, float]] = []
        if len(state.index):
            stale = state.stale
            index = state.index
            index.ef = self.ef
            # a recall searches every layer of ``filters.layers`` (none: all) for one top k
            merged = len(filters.layers) or len(Layer)
            wanted = index.candidates(fetch) + len(stale)
            labels, sims = index.search_one(query, wanted, layers=merged)
            pairs = zip(labels.tolist(), sims.tolist(), strict=True)
            found = [p for p in pairs if p[0] not in stale] if stale else list(pairs)
            if self.dtype == "i8" and found:  # f16 keeps cosines exact enough
                found = sorted(
                    self._rescore([n for n, _ in found], query).items(), key=lambda kv: -kv[1]
                )
        if len(state.pending_labels):
            sims = state.pending_vectors @ query
            found.extend(zip(state.pending_labels.tolist(), sims.tolist(), strict=True))
            found.sort(key=lambda kv: -kv[1])
        return found[:fetch]

    def _current(self, layer: Layer, state: _LayerState) -> _LayerState:
        """``state`` with every write committed since it was read, by any connection.

        Writes through this store, another ``Memory`` or another process (a server next to
        the CLI) land in the journal: a moved head means re-reading the backlog. A backlog
        that has grown past the fold threshold means the file is reopened (another writer
        may have saved a newer one) or folded.
        """
        if self.store.journal_head() == state.seen_head:
            return state
        with self._snapshot():
            self._load_backlog(layer, state)
        if len(state.pending_labels) < FOLD_THRESHOLD:
            return state
        self._layers.pop(layer, None)
        return self._open(layer)

    def _rescore(self, labels: list[int], query: npt.NDArray[np.float32]) -> dict[int, float]:
        """Exact float32 cosines from the store for candidates found in a quantized index."""
        found = self.store.vectors(labels)
        return {
            num: float(decode(blob, self.dim) @ query)
            for num, (model, blob) in found.items()
            if model == self.model_id
        }

    def _exact_filtered(
        self, filters: Filters, query: npt.NDArray[np.float32], k: int
    ) -> list[tuple[int, float]]:
        from magray.memory.backends.sqlite.rows import filter_sql

        cond, params = filter_sql(filters)
        rows = self.store.conn.execute(
            f"SELECT r.num, r.vector FROM records r WHERE {cond} AND r.embedding_model = ?"
            " AND r.vector IS NOT NULL",
            [*params, self.model_id],
        ).fetchall()
        if not rows:
            return []
        matrix = np.vstack([decode(r[1], self.dim) for r in rows])
        sims = matrix @ query
        top = np.argsort(-sims)[:k]
        return [(int(rows[i][0]), float(sims[i])) for i in top]

    def live_labels(self, layer: Layer) -> set[int]:
        """The labels a search of ``layer`` can return now (file plus backlog)."""
        state = self._current(layer, self._open(layer))
        live = set(state.index.labels().tolist()) - state.pending_gone
        return live | set(state.pending_labels.tolist())

    def health(self) -> dict[Layer, dict[str, int | str]]:
        """Per-layer index facts for ``stats``: vectors in the file, backlog, expected."""
        out: dict[Layer, dict[str, int | str]] = {}
        for layer in Layer:
            state = self._current(layer, self._open(layer))
            out[layer] = {
                "indexed": len(state.index),
                "backlog": len(state.pending_labels),
                "searchable": self._live_count(state),
                "expected": self._expected_count(layer),
                "file": str(self.path(layer)),
            }
        return out
