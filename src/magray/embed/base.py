"""The protocols every embedder and reranker implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    ``model_id`` identifies the exact weights (e.g. ``all-MiniLM-L6-v2@fp32``): vectors of
    two different ids are never mixed in one index.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed texts to be stored; shape ``(len(texts), dim)``."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed search queries (the model's query prefix/instruction applied)."""
        ...


@runtime_checkable
class Reranker(Protocol):
    """Scores (query, passage) pairs with a cross-encoder; higher is more relevant."""

    @property
    def model_id(self) -> str: ...

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]: ...
