"""Keeps the derived HNSW file in step with the store.

One index file per (model, dtype) holds the vectors of every layer; each vector's label is
its record's label shifted left by two bits with the layer's code in the low bits
(``layer_keys``), so a search knows every hit's layer without a lookup and a record that
moves to another layer gets a new label. The file records the store's ``index_journal``
sequence it reflects. On open:

- a missing or damaged file, a file for another model/dimension, or a file *ahead* of the
  store (a restored or rolled-back database) is rebuilt from the store, with a warning
  (quietly where the store only had the older per-layer files, which are then removed);
- journal entries after the file's sequence are the normal backlog of recent writes: they are
  searched exactly (brute force over their vectors) until there are enough of them to fold
  into the file, which happens under the writer lock and is then verified by count.

The store keeps a vector only until a saved file holds it (``vector_backlog``): a fold
deletes the store's copies once the file is durably saved, and vectors the store no longer
holds are read from the newest file (``vector_source``).

Search results are always re-read from SQLite with the caller's filters, so a stale label
in a file can never surface a record that moved or was deleted. Searching is in
``index_search``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from magray.errors import IndexCorruptError, StoreLockedError
from magray.memory.backends.sqlite import vector_backlog
from magray.memory.backends.sqlite.index_file import finish_save, read_sidecar
from magray.memory.backends.sqlite.store import Store
from magray.memory.backends.sqlite.vector_backlog import VECTOR_SQL
from magray.memory.backends.sqlite.vector_codec import decode
from magray.memory.backends.sqlite.vector_index import VectorIndex
from magray.memory.backends.sqlite.vector_source import VectorSource
from magray.memory.records import Layer
from magray.memory.vector_dtype import slug

__all__ = ["LAYER_CODES", "LAYER_OF", "IndexSet", "IndexState", "decode", "layer_keys"]

log = logging.getLogger("magray")

FOLD_THRESHOLD = 256  # backlog size at which pending vectors are folded into the file
# The layer codes kept in the two low bits of an index label (never reorder: on disk).
LAYER_CODES: dict[Layer, int] = {Layer.INTERACT: 0, Layer.INSIGHTS: 1, Layer.ASSETS: 2}
LAYER_OF: tuple[Layer, ...] = (Layer.INTERACT, Layer.INSIGHTS, Layer.ASSETS)
REBUILD_BATCH = 4096

Warn = Callable[[str], None]
Int64s = npt.NDArray[np.int64]


def layer_keys(nums: npt.ArrayLike, layers: npt.ArrayLike) -> Int64s:
    """Index labels of record labels ``nums`` in layers with codes ``layers``."""
    out: Int64s = (np.asarray(nums, dtype=np.int64) << 2) | np.asarray(layers, dtype=np.int64)
    return out


@dataclass
class IndexState:
    """The opened file plus what the journal says happened since it was saved."""

    index: VectorIndex
    pending_keys: Int64s = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    pending_vectors: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32)
    )
    touched: frozenset[int] = frozenset()  # record labels whose file entries a search skips
    seen_head: int = -1  # the journal head when the backlog was read
    sizes: tuple[int, int, int] = (0, 0, 0)  # vectors per layer code in the store
    exact: dict[int, tuple[Int64s, npt.NDArray[np.float32]]] = field(default_factory=dict)


class IndexSet:
    """The vector index of one store for one embedding model."""

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
        self._state: IndexState | None = None
        self.source = VectorSource(self)
        #: embeds the text of records whose vectors were lost with the file (set by Memory)
        self.reembed: Callable[[list[int]], object] | None = None

    def warn(self, message: str) -> None:
        self._warn(message)

    def open_index(self) -> VectorIndex | None:
        """The index file this set has open (None before the first search)."""
        return None if self._state is None else self._state.index

    def forget_state(self) -> None:
        """Open the file and read the backlog again at the next search."""
        self._state = None

    def path(self, layer: Layer | None = None, *, dtype: str | None = None) -> Path:
        """The index file (one for all layers; ``layer`` is accepted and ignored); with
        ``dtype``, the file this model's index of that scalar type has or would have."""
        return self.index_dir / f"vectors.{slug(self.model_id)}.{dtype or self.dtype}.usearch"

    def _legacy_files(self) -> list[Path]:
        """Per-layer index files (and sidecars) of earlier versions: derived, removable."""
        if not self.index_dir.is_dir():
            return []
        return sorted(
            p
            for layer in Layer
            for p in self.index_dir.glob(f"{layer}.*.usearch*")
            if p.name.endswith((".usearch", ".usearch.json"))
        )

    # -- opening -------------------------------------------------------------------------
    def state(self) -> IndexState:
        """The open index, caught up with every write committed since it was read."""
        state = self._state
        if state is None:
            return self._open()
        if self.store.journal_head() == state.seen_head:
            return state
        # Writes through this store, another ``Memory`` or another process land in the
        # journal: a moved head means re-reading the backlog; a backlog past the fold
        # threshold means the file is reopened (another writer may have saved a newer
        # one) or folded.
        with self._snapshot():
            self._load_backlog(state, sizes=False)
        if self.source.settle() or self._state is None:
            return self._open()  # vectors were lost or found in a newer file
        if len(state.pending_keys) < FOLD_THRESHOLD:
            return state
        self._state = None
        return self._open()

    def _open(self) -> IndexState:
        path = self.path()
        index: VectorIndex | None = None
        source: VectorIndex | None = None  # a usable file to take vectors from
        try:
            index = VectorIndex.open(
                path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=False
            )
            # the head read after the file: a writer commits before it saves the index
            if index.state.applied_seq > self.store.journal_head():
                self._warn(
                    "the vector index is newer than the store (restored database?);"
                    " rebuilding it from the store."
                )
                source, index = index, None
        except IndexCorruptError as exc:
            # No file yet is the normal state of a new store: build it quietly (a store
            # with the older per-layer files is told why its first search takes a while).
            if path.exists() or Path(str(path) + ".json").exists():
                index = self._open_after_writer(path)
                if index is None:
                    self._warn(f"the vector index is unusable ({exc}); rebuilding it.")
            elif self._legacy_files():
                self._warn(
                    "building one vector index for all layers from the store"
                    f" ({sum(self._sizes()):,} vectors; once, replacing the per-layer files)."
                )
        if index is None:
            index = self._rebuild(source)
        state = IndexState(index=index)
        with self._snapshot():  # backlog and count from one state of the store
            self._load_backlog(state)
            live, expected = self._live_count(state), sum(state.sizes)
        if self.source.settle():  # vectors were lost: the store has fewer now
            with self._snapshot():
                self._load_backlog(state)
                live, expected = self._live_count(state), sum(state.sizes)
        if live != expected:
            self._warn(
                f"the vector index disagrees with the store ({live} vectors, {expected}"
                " expected); rebuilding it."
            )
            with self.store.locked():
                state = IndexState(index=self._rebuild(state.index))
            self._load_backlog(state)
        self._state = state
        if len(state.pending_keys) >= FOLD_THRESHOLD:
            self._try_fold()
            state = self._state or state
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
                finish_save(path)  # a save killed before its rename: finish it
                index = VectorIndex.open(
                    path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=False
                )
        except (IndexCorruptError, StoreLockedError):
            return None
        return index if index.state.applied_seq <= self.store.journal_head() else None

    @staticmethod
    def _file_keys_of(index: VectorIndex, nums: frozenset[int]) -> Int64s:
        """The labels the file holds for record labels ``nums`` (in any layer)."""
        if not nums or not len(index):
            return np.zeros(0, dtype=np.int64)
        base = np.fromiter(nums, dtype=np.int64, count=len(nums)) << 2
        keys = (base[:, None] | np.arange(len(LAYER_OF), dtype=np.int64)).reshape(-1)
        present = np.asarray(index.contains(keys), dtype=bool).reshape(-1)
        found: Int64s = keys[present]
        return found

    @classmethod
    def _live_count(cls, state: IndexState) -> int:
        """Vectors a search of ``state`` can return: the file plus backlog, minus removals."""
        hidden = len(cls._file_keys_of(state.index, state.touched))
        return len(state.index) - hidden + len(state.pending_keys)

    def _sizes(self) -> tuple[int, int, int]:
        """Vectors of this model per layer code: three counts over the partial index of the
        vector-holding records (a GROUP BY would read every row of the table)."""
        counts = [
            int(
                self.store.conn.execute(
                    "SELECT COUNT(*) FROM records WHERE layer = ? AND embedding_model = ?"
                    " AND vector IS NOT NULL",
                    (str(layer), self.model_id),
                ).fetchone()[0]
            )
            for layer in LAYER_OF
        ]
        return counts[0], counts[1], counts[2]

    def _current_vectors(
        self, nums: list[int], first: VectorIndex | None = None
    ) -> tuple[Int64s, npt.NDArray[np.float32]]:
        """Index labels and vectors of the records among ``nums`` that now hold a vector of
        this model (those only a file holds: from ``first`` or the saved file)."""
        rows: list[tuple[int, str, bytes]] = []
        for i in range(0, len(nums), 500):
            chunk = nums[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows.extend(
                self.store.conn.execute(  # by label: not a layer's index
                    f"SELECT r.num, r.layer, {VECTOR_SQL} FROM records r NOT INDEXED"
                    " WHERE r.embedding_model = ? AND r.vector IS NOT NULL"
                    f" AND r.num IN ({marks})",
                    [self.model_id, *chunk],
                )
            )
        return self.source.keyed(rows, first)

    def _journal_nums(self, after: int) -> list[int]:
        """Record labels the journal names after sequence ``after``, first mention first."""
        rows = self.store.conn.execute(
            "SELECT num FROM index_journal WHERE seq > ? ORDER BY seq", (after,)
        )
        return list(dict.fromkeys(int(r[0]) for r in rows))

    def _load_backlog(self, state: IndexState, *, sizes: bool = True) -> None:
        """Read the journal after the file's sequence (and, with ``sizes``, the layer sizes:
        an index scan, skipped when a search only catches up with a few writes)."""
        state.seen_head = self.store.journal_head()  # first: a later commit is read again
        touched = self._journal_nums(state.index.state.applied_seq)
        state.pending_keys, state.pending_vectors = self._current_vectors(touched)
        state.touched = frozenset(touched)
        if sizes:
            state.sizes = self._sizes()

    # -- rebuild and fold (writers) ------------------------------------------------------
    def _rebuild(self, source: VectorIndex | None = None) -> VectorIndex:
        """A new file built from the store; the vectors the store no longer holds come from
        ``source`` or the saved file, whichever is newer (``vector_source``)."""
        head = self.store.journal_head()
        index = VectorIndex.create(
            self.path(), model_id=self.model_id, dim=self.dim, dtype=self.dtype
        )
        last = 0
        while True:
            rows = self.store.conn.execute(
                f"SELECT r.num, r.layer, {VECTOR_SQL} FROM records r WHERE r.embedding_model = ?"
                " AND r.vector IS NOT NULL AND r.num > ? ORDER BY r.num LIMIT ?",
                (self.model_id, last, REBUILD_BATCH),
            ).fetchall()
            if not rows:
                break
            keys, vectors = self.source.keyed(rows, source)
            index.add(keys, vectors)
            last = int(rows[-1][0])
        index.set_applied_seq(head)
        self.source.settle()
        self._save_if_possible(index)
        return index

    def _save_if_possible(self, index: VectorIndex) -> bool:
        """Persist ``index`` if this process can hold the writer lock right now."""
        try:
            with self.store.locked(timeout=0 if not self.store.lock_held else None):
                return self._save(index)
        except StoreLockedError:
            return False

    def _save(self, index: VectorIndex) -> bool:
        """Save ``index`` (writer lock held) unless the saved file is newer and usable: a
        file may hold vectors the store no longer keeps, so it never goes back in time.
        The older per-layer files then go. Returns whether it saved."""
        self.index_dir.mkdir(parents=True, exist_ok=True)
        try:
            saved = read_sidecar(index.path)[0].applied_seq
        except IndexCorruptError:
            saved = -1
        if index.state.applied_seq < saved <= self.store.journal_head():
            return False
        index.save()
        for old in self._legacy_files():
            old.unlink(missing_ok=True)
        return True

    def _try_fold(self) -> None:
        try:
            with self.store.locked(timeout=0 if not self.store.lock_held else None):
                self.fold()
        except StoreLockedError:
            pass  # another writer is busy; keep searching the backlog exactly

    def fold(self) -> None:
        """Apply the journal backlog to the file and save it; verify the count afterwards."""
        path = self.path()
        head = self.store.journal_head()
        try:
            index = VectorIndex.open(
                path, model_id=self.model_id, dim=self.dim, dtype=self.dtype, writable=True
            )
        except IndexCorruptError:
            index = self._rebuild()  # saved: the lock is held
        saved = index.state.applied_seq == head and bool(index.state.file_sha256)
        touched = self._journal_nums(index.state.applied_seq)
        if touched:
            keys, vectors = self._current_vectors(touched, index)
            self.source.settle()
            gone = np.setdiff1d(self._file_keys_of(index, frozenset(touched)), keys)
            if len(gone):
                index.remove(gone)
            if len(keys):
                index.add(keys, vectors)
        index.set_applied_seq(head)
        expected = sum(self._sizes())
        if len(index) != expected:
            self._warn(
                f"the vector index held {len(index)} vectors but the store has {expected};"
                " rebuilding it."
            )
            index = self._rebuild(index)
        elif touched or not saved:
            self._save(index)
        self._clear_backlog(index)
        state = IndexState(index=index)
        self._load_backlog(state)
        self._state = state

    def _clear_backlog(self, index: VectorIndex) -> None:
        """Drop the store's copies of the vectors ``index`` holds, once it is the saved file
        at the journal head (writer lock held since the journal was read: no write came
        between; ``vector_backlog``)."""
        if index.state.applied_seq != self.store.journal_head() or not index.state.file_sha256:
            return
        if read_sidecar(index.path)[0] != index.state:
            return
        with self.store.write() as conn:
            gone = vector_backlog.clear(conn, self.model_id, self.dtype)
        if gone:
            vector_backlog.give_back(self.store.conn)

    def sync(self) -> None:
        """Fold the backlog now (after bulk writes)."""
        with self.store.locked():
            self._state = None
            self.fold()

    def rebuild_all(self) -> None:
        with self.store.locked():
            state = IndexState(index=self._rebuild(self.source.newest()))
            self._clear_backlog(state.index)
            self._load_backlog(state)
            self._state = state

    # -- facts ---------------------------------------------------------------------------
    def live_labels(self, layer: Layer) -> set[int]:
        """The record labels a search of ``layer`` can return now (file plus backlog)."""
        state = self.state()
        code = LAYER_CODES[layer]
        keys = state.index.labels()
        mine = keys[(keys & 3) == code] >> 2
        live = set(mine.tolist()) - state.touched
        pending = state.pending_keys[(state.pending_keys & 3) == code] >> 2
        return live | set(pending.tolist())

    def health(self) -> dict[Layer, dict[str, int | str]]:
        """Per-layer index facts for ``stats``: vectors in the file, backlog, expected."""
        state = self.state()
        state.sizes = self._sizes()
        keys = state.index.labels()
        hidden = self._file_keys_of(state.index, state.touched)
        out: dict[Layer, dict[str, int | str]] = {}
        for layer, code in LAYER_CODES.items():
            indexed = int(np.count_nonzero((keys & 3) == code))
            backlog = int(np.count_nonzero((state.pending_keys & 3) == code))
            gone = int(np.count_nonzero((hidden & 3) == code))
            out[layer] = {
                "indexed": indexed,
                "backlog": backlog,
                "searchable": indexed - gone + backlog,
                "expected": state.sizes[code],
                "file": str(self.path()),
            }
        return out
