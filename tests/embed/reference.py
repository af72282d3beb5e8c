"""An independent pure-numpy BERT forward pass (Hugging Face ``BertModel`` semantics)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

Array = Any


def _erf(x: Array) -> Array:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def bert_forward(
    weights: Mapping[str, Array],
    input_ids: Array,
    attention_mask: Array,
    token_type_ids: Array | None,
    *,
    num_heads: int,
    eps: float = 1e-12,
) -> Array:
    """``last_hidden_state`` in float64, computed layer by layer with plain numpy."""
    w = {k.removeprefix("bert."): np.asarray(v, dtype=np.float64) for k, v in weights.items()}
    n_layers = 1 + max(int(k.split(".")[2]) for k in w if k.startswith("encoder.layer."))
    seq = input_ids.shape[1]
    types = np.zeros_like(input_ids) if token_type_ids is None else token_type_ids
    x = (
        w["embeddings.word_embeddings.weight"][input_ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)][None]
        + w["embeddings.token_type_embeddings.weight"][types]
    )
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    hidden = x.shape[-1]
    head_dim = hidden // num_heads
    bias = (1.0 - attention_mask[:, None, None, :].astype(np.float64)) * -1e9

    def linear(v: Array, name: str) -> Array:
        return v @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def heads(v: Array) -> Array:
        b, s, _ = v.shape
        return v.reshape(b, s, num_heads, head_dim).transpose(0, 2, 1, 3)

    for i in range(n_layers):
        p = f"encoder.layer.{i}"
        q = heads(linear(x, f"{p}.attention.self.query"))
        k = heads(linear(x, f"{p}.attention.self.key"))
        v = heads(linear(x, f"{p}.attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_dim) + bias
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        attn = linear(ctx, f"{p}.attention.output.dense")
        x = _layer_norm(
            attn + x,
            w[f"{p}.attention.output.LayerNorm.weight"],
            w[f"{p}.attention.output.LayerNorm.bias"],
            eps,
        )
        inter = linear(x, f"{p}.intermediate.dense")
        inter = 0.5 * inter * (1.0 + _erf(inter / math.sqrt(2.0)))
        out = linear(inter, f"{p}.output.dense")
        x = _layer_norm(
            out + x, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps
        )
    return x


def mean_pool(hidden: Array, mask: Array) -> Array:
    m = mask[..., None].astype(np.float64)
    pooled = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return pooled / np.linalg.norm(pooled, axis=-1, keepdims=True)
