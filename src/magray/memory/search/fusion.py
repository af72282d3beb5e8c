"""Fusion of the vector and keyword rankings: weighted reciprocal ranks or a convex
combination of min-max-normalised scores (setting ``search.fusion``).

``fuse`` and ``fuse_convex`` are pure and property-tested; the searches themselves are the
backend's (``Backend.vector_search`` and ``Backend.keyword_search``).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from magray.memory.backends.base import Candidate
from magray.memory.records import Explanation, Layer
from magray.memory.search.keywords import NORM_DEPTH

__all__ = [
    "NORM_DEPTH",
    "UNEXPLAINED",
    "Candidate",
    "Candidates",
    "FusionParams",
    "fuse",
    "fuse_convex",
    "one_weight",
    "recency_factor",
]


@dataclass(frozen=True, slots=True)
class FusionParams:
    """How the two rankings are combined (settings search.*)."""

    rrf_k: float = 60.0
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    layer_weights: Mapping[Layer, float] = field(default_factory=lambda: dict.fromkeys(Layer, 1.0))
    recency_half_life_days: float = 0.0  # 0 disables the recency boost
    recency_boost: float = 0.25  # at most +25 % for a brand-new record
    method: str = "rrf"  # "rrf" (``fuse``) or "convex" (``fuse_convex``)


def recency_factor(age_seconds: float, params: FusionParams) -> float:
    """1 + boost·2^(−age/half-life): new records gain up to ``boost``, old ones gain ~0."""
    if params.recency_half_life_days <= 0:
        return 1.0
    half_life = params.recency_half_life_days * 86400.0
    return 1.0 + params.recency_boost * math.pow(2.0, -max(age_seconds, 0.0) / half_life)


# What a fusion asked for no explanations (``explain=False``) carries instead of one.
UNEXPLAINED = Explanation()

Ranked = dict[int, tuple[int, float]]  # label → (1-based rank, score)
# The candidates of a fusion: label → what it knows of the record, or None when every label
# of both lists counts and one layer weight without recency applies to all (recall's plain
# case: nothing about the records needs to be read before fusing).
Candidates = Mapping[int, Candidate] | None


_LAYER_COUNT = len(Layer)


def one_weight(params: FusionParams) -> float | None:
    """The layer weight when every layer has the same one and recency is off, else None."""
    weights = params.layer_weights
    same = set(weights.values()) if len(weights) == _LAYER_COUNT else set()
    if len(same) != 1 or params.recency_half_life_days > 0:
        return None
    return next(iter(same))


def _ranks(pairs: Sequence[tuple[int, float]], candidates: Candidates) -> Ranked:
    """1-based ranks of ``pairs`` without labels missing from ``candidates`` or seen before."""
    if candidates is None:  # every label counts: one pass when none repeats (the usual case)
        ranked = {num: (rank, score) for rank, (num, score) in enumerate(pairs, 1)}
        if len(ranked) == len(pairs):
            return ranked
    ranked = {}
    rank = 0
    for num, score in pairs:
        if num not in ranked and (candidates is None or num in candidates):
            rank += 1
            ranked[num] = (rank, score)
    return ranked


def _combine(
    v_rank: Ranked,
    k_rank: Ranked,
    candidates: Candidates,
    params: FusionParams,
    now: float,
    base: Mapping[int, float],
    limit: int | None = None,
    explain: bool = True,
) -> list[tuple[int, float, Explanation]]:
    """``base[label]`` × layer weight × recency for every label of either list, best first
    (ties by label); only the best ``limit`` (all when None) are returned, with their
    explanations (``UNEXPLAINED`` for each unless ``explain``). Recall runs this on every
    query over a few hundred labels: it stays a plain loop over dicts."""
    weights = params.layer_weights
    recency_on = params.recency_half_life_days > 0
    w = one_weight(params)
    if w is not None or candidates is None:  # one weight for every label: no lookups
        w = 1.0 if w is None else w
        if not explain:  # (−score, label) pairs order as the full tuples do: labels differ
            pairs = [(-(score * w * 1.0), num) for num, score in base.items()]
            if limit is None or limit >= len(pairs):
                pairs.sort()
            else:
                pairs = heapq.nsmallest(limit, pairs)
            return [(num, -neg, UNEXPLAINED) for neg, num in pairs]
        scored = [(-(score * w * 1.0), num, w, 1.0) for num, score in base.items()]
    else:
        scored = []
        for num, score in base.items():
            cand = candidates[num]
            layer_weight = weights.get(cand.layer, 1.0)
            recency = recency_factor(now - cand.created_at, params) if recency_on else 1.0
            scored.append((-(score * layer_weight * recency), num, layer_weight, recency))
    if limit is None or limit >= len(scored):
        scored.sort()
    else:
        scored = heapq.nsmallest(limit, scored)
    if not explain:
        return [(num, -neg, UNEXPLAINED) for neg, num, _, _ in scored]
    fused: list[tuple[int, float, Explanation]] = []
    for neg, num, layer_weight, recency in scored:
        vr, kr = v_rank.get(num), k_rank.get(num)
        explanation = Explanation(
            vector_rank=vr[0] if vr else None,
            vector_score=vr[1] if vr else None,
            keyword_rank=kr[0] if kr else None,
            keyword_score=kr[1] if kr else None,
            fused_score=-neg,
            layer_weight=layer_weight,
            recency_factor=recency,
        )
        fused.append((num, -neg, explanation))
    return fused


def fuse(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    candidates: Candidates,
    params: FusionParams,
    now: float,
    limit: int | None = None,
    *,
    explain: bool = True,
) -> list[tuple[int, float, Explanation]]:
    """Weighted reciprocal-rank fusion, best first.

    Both inputs are (label, score) lists already in best-first order; labels missing from
    ``candidates`` (filtered out or deleted) are dropped *before* ranks are assigned. With
    ``limit`` only the best ``limit`` come back (the others are scored, not explained);
    with ``explain=False`` none is explained (each carries ``UNEXPLAINED``): the same
    labels and scores in the same order, without the cost of the explanations.
    """
    v_rank, k_rank = _ranks(vector, candidates), _ranks(keyword, candidates)
    rrf_k, vw, kw = params.rrf_k, params.vector_weight, params.keyword_weight
    base = {num: 0.0 + vw / (rrf_k + rank) for num, (rank, _) in v_rank.items()}
    for num, (rank, _) in k_rank.items():
        base[num] = base.get(num, 0.0) + kw / (rrf_k + rank)
    return _combine(v_rank, k_rank, candidates, params, now, base, limit, explain)


def _normalised(ranked: Ranked) -> dict[int, float]:
    """Scores of a ranked list (best first) mapped to [0, 1] (best = 1).

    The low anchor is the score at rank ``NORM_DEPTH`` (or the last rank of a shorter list)
    and lower scores clip to 0, so a label's normalised score — and with it the ranking —
    does not depend on how many candidates beyond that rank were fetched.
    """
    if not ranked:
        return {}
    scores = [score for _, score in ranked.values()]
    hi, lo = scores[0], scores[min(NORM_DEPTH, len(scores)) - 1]
    span = hi - lo
    if span <= 0:
        return dict.fromkeys(ranked, 1.0)
    out: dict[int, float] = {}
    for num, (_, score) in ranked.items():
        value = (score - lo) / span
        out[num] = value if value > 0.0 else 0.0  # max(0.0, value), without the call
    return out


def fuse_convex(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    candidates: Candidates,
    params: FusionParams,
    now: float,
    limit: int | None = None,
    *,
    explain: bool = True,
) -> list[tuple[int, float, Explanation]]:
    """Convex combination of min-max-normalised scores, best first.

    score = α·norm(cosine) + (1 − α)·norm(BM25) with α = vector_weight / (vector_weight +
    keyword_weight); each list is normalised over its own candidates (after dropping labels
    missing from ``candidates``), and a label absent from a list scores 0 there. Unlike RRF it
    keeps how far apart the scores are, not just their order. Layer weight and recency
    multiply the result exactly as in ``fuse``; ``limit`` and ``explain`` as in ``fuse``.
    """
    total = params.vector_weight + params.keyword_weight
    alpha = params.vector_weight / total if total > 0 else 0.5
    if not keyword and candidates is None and not explain and vector:
        fused = _convex_one_list(vector, alpha, params, limit)
        if fused is not None:
            return fused
    v_rank, k_rank = _ranks(vector, candidates), _ranks(keyword, candidates)
    v_norm, k_norm = _normalised(v_rank), _normalised(k_rank)
    beta = 1.0 - alpha
    base = {num: alpha * v + beta * k_norm.get(num, 0.0) for num, v in v_norm.items()}
    for num, k in k_norm.items():
        if num not in base:
            base[num] = alpha * 0.0 + beta * k
    return _combine(v_rank, k_rank, candidates, params, now, base, limit, explain)


def _convex_one_list(
    vector: Sequence[tuple[int, float]], alpha: float, params: FusionParams, limit: int | None
) -> list[tuple[int, float, Explanation]] | None:
    """``fuse_convex`` of a vector list alone, every label counting and nothing explained
    (a vector-mode recall): the same floats, computed in the same order, and the same
    order of labels, without the rank and score dicts. None when a label repeats (the
    general path keeps its first place)."""
    labels = [num for num, _ in vector]
    if len(set(labels)) != len(labels):
        return None
    hi, lo = vector[0][1], vector[min(NORM_DEPTH, len(vector)) - 1][1]
    span = hi - lo
    beta = 1.0 - alpha
    w = one_weight(params)
    w = 1.0 if w is None else w
    pairs: list[tuple[float, int]] = []
    for num, score in vector:
        if span <= 0:
            v = 1.0
        else:
            value = (score - lo) / span
            v = value if value > 0.0 else 0.0
        base = alpha * v + beta * 0.0
        pairs.append((-(base * w * 1.0), num))
    if limit is None or limit >= len(pairs):
        pairs.sort()
    else:
        pairs = heapq.nsmallest(limit, pairs)
    return [(num, -neg, UNEXPLAINED) for neg, num in pairs]
