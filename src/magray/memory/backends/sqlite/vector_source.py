"""Where a stored vector is read from when the store no longer keeps it: the newest file.

A store that keeps vectors apart (``vector_backlog``) drops its copy of a vector once a
durably saved index file holds it, and a saved file never goes back in time (``IndexSet``
only replaces it with a newer one), so the newest usable file holds every vector the store
dropped. :class:`VectorSource` finds that file (the caller's index, the open one or the one
on disk, whichever reflects the latest journal sequence), reads vectors from it by record
label in any layer, and handles the vectors no usable file holds: they are looked for once
more under the writer lock and, if still missing, set to NULL with one warning; the
``Memory`` over the store then embeds those records' text again (``IndexSet.reembed``),
else ``magray memory reindex --reembed`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from magray.errors import IndexCorruptError, StoreLockedError
from magray.memory.backends.sqlite import vector_backlog
from magray.memory.backends.sqlite.index_file import finish_save, read_sidecar
from magray.memory.backends.sqlite.vector_backlog import APART, APART_DTYPES, VECTOR_SQL
from magray.memory.backends.sqlite.vector_codec import decode, to_float32
from magray.memory.backends.sqlite.vector_index import VectorIndex
from magray.memory.records import Layer

if TYPE_CHECKING:
    from magray.memory.backends.sqlite.index_sync import IndexSet

Int64s = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
_CODES = {Layer.INTERACT: 0, Layer.INSIGHTS: 1, Layer.ASSETS: 2}  # as ``index_sync.LAYER_CODES``


class VectorSource:
    """Vectors of one ``IndexSet``'s records, from the store or else the newest file."""

    def __init__(self, owner: IndexSet) -> None:
        self._owner = owner
        self._disk: VectorIndex | None = None  # the saved file, opened read-only
        self._others: dict[str, VectorIndex | None] | None = None  # files of other dtypes
        self.unresolved: set[int] = set()  # record labels no usable file held

    # -- the newest file ------------------------------------------------------------------
    def _saved_seq(self) -> int:
        try:
            return read_sidecar(self._owner.path())[0].applied_seq
        except IndexCorruptError:
            return -1

    def newest(self, first: VectorIndex | None = None) -> VectorIndex | None:
        """The index reflecting the latest journal sequence among ``first``, the open one
        and the saved file (None if none is usable)."""
        owner = self._owner
        held = [i for i in (first, owner.open_index()) if i is not None]
        best = max(held, key=lambda i: i.state.applied_seq, default=None)
        saved = self._saved_seq()
        if best is not None and best.state.applied_seq >= saved:
            return best
        disk = self._disk
        if disk is None or disk.state.applied_seq != saved:
            try:
                disk = VectorIndex.open(
                    owner.path(),
                    model_id=owner.model_id,
                    dim=owner.dim,
                    dtype=owner.dtype,
                    writable=False,
                )
            except IndexCorruptError:
                return best
            self._disk = disk
        return disk

    def _other_files(self) -> list[VectorIndex]:
        """This model's saved files of the other exact scalar types (``memory.vector_dtype``
        changed since): vectors the store dropped under that setting are there."""
        owner = self._owner
        if self._others is None:
            self._others = {}
            for dtype in APART_DTYPES:
                path = owner.path(dtype=dtype)
                if dtype == owner.dtype or not path.exists():
                    continue
                try:
                    self._others[dtype] = VectorIndex.open(
                        path, model_id=owner.model_id, dim=owner.dim, dtype=dtype, writable=False
                    )
                except IndexCorruptError:
                    self._others[dtype] = None
        return [i for i in self._others.values() if i is not None]

    def _find(self, nums: Sequence[int], first: VectorIndex | None = None) -> dict[int, Matrix]:
        """Vectors of ``nums`` from the newest file, else from a file of another dtype."""
        found = self._lookup(self.newest(first), nums)
        if len(found) < len(nums):
            for other in self._other_files():
                found.update(self._lookup(other, [n for n in nums if n not in found]))
        return found

    @staticmethod
    def _lookup(index: VectorIndex | None, nums: Sequence[int]) -> dict[int, Matrix]:
        """The vectors ``index`` holds for record labels ``nums`` (under any layer code)."""
        if index is None or not nums or not len(index):
            return {}
        base = np.asarray(nums, dtype=np.int64) << 2
        keys = (base[:, None] | np.arange(3, dtype=np.int64)).reshape(-1)
        present = np.asarray(index.contains(keys), dtype=bool).reshape(-1)
        found: Int64s = keys[present]
        if not len(found):
            return {}
        vectors = index.vectors_of(found)
        return {int(key) >> 2: vectors[i] for i, key in enumerate(found.tolist())}

    # -- reads ----------------------------------------------------------------------------
    def keyed(
        self, rows: Sequence[tuple[int, str, bytes]], first: VectorIndex | None = None
    ) -> tuple[Int64s, Matrix]:
        """Index labels and float32 vectors of (label, layer, stored vector) rows; a vector
        the store dropped comes from the newest file (rows no file holds are left out and
        remembered for :meth:`settle`)."""
        dim = self._owner.dim
        apart = [int(num) for num, _, blob in rows if blob == APART]
        from_file = self._find(apart, first) if apart else {}
        keys: list[int] = []
        vectors: list[Matrix] = []
        for num, layer, blob in rows:
            if blob == APART:
                vec = from_file.get(int(num))
                if vec is None:
                    self.unresolved.add(int(num))
                    continue
            else:
                vec = decode(blob, dim)
            keys.append((int(num) << 2) | _CODES[Layer(layer)])
            vectors.append(vec)
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32)
        return np.asarray(keys, dtype=np.int64), np.vstack(vectors).astype(np.float32, copy=False)

    def of_records(self, nums: Sequence[int]) -> dict[int, Matrix]:
        """Vectors of records the store dropped, from the newest file (missing ones are
        remembered for :meth:`settle`)."""
        found = self._find(nums)
        self.unresolved.update(n for n in nums if n not in found)
        return found

    def stored(self, nums: Sequence[int]) -> dict[int, tuple[str | None, Matrix]]:
        """(embedding model, float32 vector) of each of ``nums`` that has a vector, from the
        store or else the newest file (a vector lost with a damaged file is left out)."""
        found = self._owner.store.vectors(nums)
        apart = [num for num, (_, blob) in found.items() if blob == APART]
        from_file = self.of_records(apart) if apart else {}
        out: dict[int, tuple[str | None, Matrix]] = {}
        for num, (model, blob) in found.items():
            if blob != APART:
                out[num] = (model, to_float32(blob))  # any dimension: a caller checks
            elif num in from_file:
                out[num] = (model, from_file[num])
        if apart:
            self.settle()
        return out

    # -- vectors no file holds ------------------------------------------------------------
    def settle(self) -> int:
        """Look once more, under the writer lock, for the vectors no file held; mark those
        still missing as having none (with one warning). Returns how many were marked. Waits
        for a moment outside any transaction and for the lock (else tries again later)."""
        owner = self._owner
        store = owner.store
        if not self.unresolved or store.conn.in_transaction:
            return 0
        try:
            with store.locked(timeout=0 if not store.lock_held else None):
                finish_save(owner.path())  # a save interrupted before its rename
                self._disk = self._others = None
                nums = sorted(self.unresolved)
                still: list[int] = []
                for i in range(0, len(nums), 500):
                    chunk = nums[i : i + 500]
                    still.extend(
                        int(r[0])
                        for r in store.conn.execute(
                            f"SELECT r.num, {VECTOR_SQL} FROM records r"
                            f" WHERE r.num IN ({','.join('?' * len(chunk))})",
                            chunk,
                        )
                        if r[1] == APART
                    )
                found = self._find(still)
                if found:  # a newer file than the one read: read the backlog again
                    owner.forget_state()
                lost_nums = [n for n in still if n not in found]
                lost = 0
                if lost_nums:
                    with store.write() as conn:
                        lost = vector_backlog.lose(conn, lost_nums)
                self.unresolved.clear()
        except StoreLockedError:
            return 0
        if lost:
            again = owner.reembed
            owner.warn(
                f"{lost} record(s) kept their vector only in the vector index, which is"
                " missing or damaged; "
                + (
                    "embedding their text again."
                    if again is not None
                    else "run `magray memory reindex --reembed` to embed their text again."
                )
            )
            if again is not None:
                again(lost_nums)
        return lost
