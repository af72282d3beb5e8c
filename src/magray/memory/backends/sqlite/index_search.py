"""Vector search of the SQLite backend: one search of the one index file for any layers.

Unfiltered (every layer), a recall is one HNSW search. Restricted to some layers, the
search over-fetches: it asks for the wanted count divided by the share of the index those
layers hold (plus a margin), with the search expansion widened in proportion to that
factor (``WIDEN``), and keeps the labels of those layers, asking again for twice as many
while too few came back. Layers too small for that to pay (at most ``EXACT_LIMIT`` vectors
in a larger index, and few against the expansion: ``EXACT_PER_EF``) are searched exactly
over their vectors, read once from the index per file.
Selective filters (tags, kind, project, session, time) over at most ``EXACT_FILTER_LIMIT``
records are searched exactly over the store's vectors. The backlog of writes not yet
folded into the file is always searched exactly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from magray.memory.backends.sqlite.index_sync import (
    LAYER_CODES,
    LAYER_OF,
    IndexSet,
    IndexState,
)
from magray.memory.backends.sqlite.vector_backlog import VECTOR_SQL
from magray.memory.backends.sqlite.vector_index import EXACT_LIMIT, expansion_for
from magray.memory.records import Filters, Layer

EXACT_FILTER_LIMIT = 20_000  # filtered sets up to this size are searched exactly
OVERFETCH = 1.25  # margin over the layers' expected share of a search
OVERFETCH_EXTRA = 16
# Small layers are searched exactly while their size is at most this many times the
# expansion the over-fetch would need: a brute-force pass costs about 1/12 of one graph
# step per vector (a top-10 of one third of 20K vectors: 0.74 ms by the graph, 3.9 ms
# exactly; a 200-deep pool of a 5K layer: equal).
EXACT_PER_EF = 12
# A search of layers holding ``share`` of the index widens its expansion by 1 + WIDEN·(1 /
# share − 1). Measured on 100K bench vectors (one graph, ef 64 unfiltered; layers of random
# labels), recall@10 against the square root of 1 / share used before: share 0.05 0.9585
# (was 0.949), 0.1 0.9705 (same), 0.2 0.9645 (0.971), 1/3 0.9765 (0.980) for 20 % less
# CPU, 1/2 0.988 (0.9895), 2/3 0.9875 (0.991).
WIDEN = 0.24

Keys = npt.NDArray[np.int64]
Sims = npt.NDArray[np.float32]
Hit = tuple[int, float, Layer]


def search(
    indexes: IndexSet,
    query: npt.NDArray[np.float32],
    layers: tuple[Layer, ...],
    want: int,
    filters: Filters,
) -> list[Hit]:
    """Up to ``want`` (label, cosine, layer) of ``layers``, best first; with active filters
    up to ``4·want``, as candidates the caller re-reads with the filters."""
    codes = sorted({LAYER_CODES[layer] for layer in layers or LAYER_OF})
    if want < 1:
        return []
    q = np.array(query, dtype=np.float32)  # a unit copy: the index compares inner products
    norm = float(np.sqrt(q @ q))
    if norm > 0.0:
        q /= norm
    if filters.selective:
        scoped = dataclasses.replace(filters, layers=tuple(LAYER_OF[c] for c in codes))
        if indexes.store.count(scoped) <= EXACT_FILTER_LIMIT:
            return _exact_filtered(indexes, scoped, q, want)
    state = indexes.state()
    fetch = want * (4 if filters.active else 1)
    keys, sims = _file_hits(indexes, state, q, codes, fetch)
    if len(state.pending_keys):
        pending = state.pending_keys
        mine = _in_codes(pending, codes)
        keys = np.concatenate([keys, pending[mine]])
        sims = np.concatenate([sims, state.pending_vectors[mine] @ q])
        order = np.argsort(-sims, kind="stable")[:fetch]
        keys, sims = keys[order], sims[order]
    elif len(keys) > fetch:
        keys, sims = keys[:fetch], sims[:fetch]
    return [
        (num, sim, LAYER_OF[code])
        for num, sim, code in zip(
            (keys >> 2).tolist(), sims.tolist(), (keys & 3).tolist(), strict=True
        )
    ]


def _in_codes(keys: Keys, codes: list[int]) -> npt.NDArray[np.bool_]:
    low = keys & 3
    mask: npt.NDArray[np.bool_] = low == codes[0]
    for code in codes[1:]:
        mask |= low == code
    return mask


def _file_hits(
    indexes: IndexSet, state: IndexState, q: Sims, codes: list[int], fetch: int
) -> tuple[Keys, Sims]:
    """The file's best ``fetch`` labels of layers ``codes`` (fewer if it has fewer)."""
    index = state.index
    n = len(index)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    stale = len(state.touched)
    need = index.candidates(fetch)
    if len(codes) == len(LAYER_OF):
        count = need + stale
        raw, sims = index.search_keys(q, count, expansion_for(n, count, indexes.ef))
        keys = raw.astype(np.int64)
    else:
        size = sum(state.sizes[c] for c in codes)
        share = max(size, 1) / max(sum(state.sizes), size, 1)
        count = math.ceil(need / share * OVERFETCH) + OVERFETCH_EXTRA + stale
        # The layers' best ``need`` lie about ``1 / share`` times deeper in the graph's
        # order: the expansion a search of ``need`` gets is widened with that (``WIDEN``).
        wide = math.ceil(expansion_for(n, need, indexes.ef) * (1.0 + WIDEN * (1.0 / share - 1.0)))
        if n > EXACT_LIMIT and size <= min(EXACT_LIMIT, EXACT_PER_EF * max(wide, count)):
            keys, sims = _exact_layers(state, q, codes, need + stale)
        else:
            while True:
                ef = max(expansion_for(n, count, indexes.ef), wide)
                raw, sims = index.search_keys(q, count, ef)
                keys = raw.astype(np.int64)
                mine = _in_codes(keys, codes)
                if int(mine.sum()) >= need + stale or count >= n:
                    break
                count = min(n, 2 * count)
            keys, sims = keys[mine], sims[mine]
    if stale:
        fresh = ~np.isin(keys >> 2, np.fromiter(state.touched, np.int64, count=stale))
        keys, sims = keys[fresh], sims[fresh]
    if indexes.dtype == "i8" and len(keys):  # f16 keeps cosines exact enough
        keys, sims = _rescore(indexes, keys[:need], q)
    return keys, sims


def _exact_layers(state: IndexState, q: Sims, codes: list[int], need: int) -> tuple[Keys, Sims]:
    """Brute force over the file's vectors of small layers (read once per file)."""
    parts_k: list[Keys] = []
    parts_s: list[Sims] = []
    for code in codes:
        cached = state.exact.get(code)
        if cached is None:
            labels = state.index.labels()
            mine = labels[(labels & 3) == code]
            cached = state.exact[code] = (mine, state.index.vectors_of(mine))
        keys, matrix = cached
        parts_k.append(keys)
        parts_s.append(matrix @ q)
    keys = np.concatenate(parts_k)
    sims = np.concatenate(parts_s).astype(np.float32, copy=False)
    if len(keys) > need:
        top = np.argpartition(-sims, need - 1)[:need]
        keys, sims = keys[top], sims[top]
    order = np.argsort(-sims, kind="stable")
    return keys[order], sims[order]


def _rescore(indexes: IndexSet, keys: Keys, q: Sims) -> tuple[Keys, Sims]:
    """Exact float32 cosines from the store for candidates found in a quantized index."""
    found = indexes.source.stored((keys >> 2).tolist())
    kept = [
        (int(key), float(found[int(key) >> 2][1] @ q))
        for key in keys.tolist()
        if int(key) >> 2 in found and found[int(key) >> 2][0] == indexes.model_id
    ]
    kept.sort(key=lambda kv: -kv[1])
    return (
        np.asarray([k for k, _ in kept], dtype=np.int64),
        np.asarray([s for _, s in kept], dtype=np.float32),
    )


def _exact_filtered(
    indexes: IndexSet, filters: Filters, query: npt.NDArray[np.float32], want: int
) -> list[Hit]:
    from magray.memory.backends.sqlite.rows import filter_sql

    cond, params = filter_sql(filters)
    rows = indexes.store.conn.execute(
        f"SELECT r.num, r.layer, {VECTOR_SQL} FROM records r WHERE {cond}"
        " AND r.embedding_model = ? AND r.vector IS NOT NULL",
        [*params, indexes.model_id],
    ).fetchall()
    if not rows:
        return []
    keys, matrix = indexes.source.keyed(rows)  # vectors the store dropped: from the file
    sims = matrix @ query
    top = np.argsort(-sims, kind="stable")[:want]
    return [(int(keys[i] >> 2), float(sims[i]), LAYER_OF[int(keys[i] & 3)]) for i in top]
