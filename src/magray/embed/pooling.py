"""Pooling token vectors into one vector per text (mean, CLS, last token) and L2 norms."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import ModelError

Vectors = npt.NDArray[np.float32]


def pool(hidden: npt.NDArray[Any], mask: npt.NDArray[Any], how: str) -> Vectors:
    """Pool ``hidden`` (batch, seq, dim) under ``mask`` (batch, seq) into (batch, dim).

    ``mean`` averages the real tokens, ``cls`` takes the first position, ``last_token`` the
    last real token of each row (right or left padding alike).
    """
    hidden = np.asarray(hidden, dtype=np.float32)
    if hidden.ndim == 2:  # the graph already pooled
        return hidden
    if hidden.ndim != 3:
        raise ModelError(f"the model returned shape {hidden.shape}; expected (batch, seq, dim).")
    if how == "mean":
        m = mask.astype(np.float32)
        summed: Vectors = np.matmul(m[:, None, :], hidden)[:, 0, :]
        counts: Vectors = np.maximum(m.sum(axis=1, keepdims=True), 1e-9)
        return summed / counts
    if how == "cls":
        return hidden[:, 0, :]
    if how == "last_token":
        seq = mask.shape[1]
        last = seq - 1 - np.argmax(mask[:, ::-1] > 0, axis=1)
        picked: Vectors = hidden[np.arange(hidden.shape[0]), last, :]
        return picked
    raise ModelError(f"unknown pooling {how!r}; use mean, cls or last_token.")


def l2_normalize(vectors: npt.NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    out: Vectors = (v / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return out
