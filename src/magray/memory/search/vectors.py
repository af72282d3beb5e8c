"""The vector candidates of one recall: the best ``want`` over the layers searched.

A backend with one index over every layer (the SQLite backend's ``vector_search_layers``)
answers in one search; one with an index per layer (PostgreSQL) is asked layer by layer
for the best ``want`` over all of them, not ``want`` from each.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from magray.memory.backends.base import Backend
from magray.memory.records import Filters, Layer


def vector_pool(
    backend: Backend,
    qvec: npt.NDArray[np.float32],
    layers: tuple[Layer, ...],
    want: int,
    filters: Filters,
) -> list[tuple[int, float, Layer]]:
    """The best ``want`` (label, cosine, layer) over ``layers``, best first.

    Each layer is first asked for its share of ``want`` (half again its even part) and
    asked for all ``want`` only when its share could hide more of the best ``want``:
    the answer is the one ``want`` per layer gives, from narrower searches. With
    filters every label found is kept (the store may still drop some of them).
    """
    search_layers = getattr(backend, "vector_search_layers", None)
    if search_layers is not None:  # one index over every layer: one search
        found_all: list[tuple[int, float, Layer]] = search_layers(qvec, layers, want, filters)
        return found_all
    share = want
    if len(layers) > 1 and not filters.active:
        share = min(want, max(10, math.ceil(1.5 * want / len(layers))))
    found = {layer: backend.vector_search(layer, qvec, share, filters) for layer in layers}

    def merged() -> list[tuple[int, float, Layer]]:
        out = [(num, sim, layer) for layer, hits in found.items() for num, sim in hits]
        out.sort(key=lambda hit: -hit[1])
        return out if filters.active else out[:want]

    best = merged()
    if share < want:
        cutoff = best[-1][1] if len(best) >= want else -math.inf
        again = [
            layer for layer, hits in found.items() if len(hits) >= share and hits[-1][1] >= cutoff
        ]
        for layer in again:
            found[layer] = backend.vector_search(layer, qvec, want, filters)
        if again:
            best = merged()
    return best
