"""``fuse_convex``: the score-normalised convex combination used by hybrid search."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magray.memory.records import Layer
from magray.memory.search.fusion import (
    NORM_DEPTH,
    UNEXPLAINED,
    Candidate,
    FusionParams,
    fuse,
    fuse_convex,
)

NOW = 1_000_000.0


def cands(nums: list[int]) -> dict[int, Candidate]:
    return {n: Candidate(n, Layer.ASSETS, NOW) for n in nums}


def test_by_hand() -> None:
    vector = [(1, 0.9), (2, 0.5), (3, 0.1)]  # normalised: 1, 0.5, 0
    keyword = [(3, 12.0), (4, 2.0)]  # normalised: 1, 0
    fused = fuse_convex(vector, keyword, cands([1, 2, 3, 4]), FusionParams(method="convex"), NOW)
    assert [(n, pytest.approx(s)) for n, s, _ in fused] == [(1, 0.5), (3, 0.5), (2, 0.25), (4, 0.0)]
    expl = fused[1][2]
    assert (expl.vector_rank, expl.keyword_rank, expl.keyword_score) == (3, 1, 12.0)


def test_weights_set_alpha_and_missing_candidates_are_dropped_before_normalising() -> None:
    vector = [(9, 0.99), (1, 0.9), (2, 0.1)]  # 9 is filtered out
    keyword = [(2, 5.0), (1, 1.0)]
    only_vector = FusionParams(vector_weight=1.0, keyword_weight=0.0)
    fused = fuse_convex(vector, keyword, cands([1, 2]), only_vector, NOW)
    assert [(n, s) for n, s, _ in fused] == [(1, 1.0), (2, 0.0)]
    only_keyword = FusionParams(vector_weight=0.0, keyword_weight=2.0)
    assert [n for n, _, _ in fuse_convex(vector, keyword, cands([1, 2]), only_keyword, NOW)] == [
        2,
        1,
    ]


ranked = st.lists(
    st.tuples(st.integers(0, 30), st.floats(-50, 50, allow_nan=False)), max_size=25
).map(lambda pairs: sorted(pairs, key=lambda p: -p[1]))


@given(ranked, ranked, st.floats(0, 5), st.floats(0, 5))
def test_scores_are_bounded_sorted_and_cover_every_candidate(
    vector: list[tuple[int, float]], keyword: list[tuple[int, float]], wv: float, wk: float
) -> None:
    pool = cands(list(range(0, 31, 2)))  # odd labels are "filtered out"
    params = FusionParams(vector_weight=wv, keyword_weight=wk)
    fused = fuse_convex(vector, keyword, pool, params, NOW)
    nums = [n for n, _, _ in fused]
    assert len(nums) == len(set(nums))
    assert set(nums) == {n for n, _ in [*vector, *keyword] if n in pool}
    scores = [s for _, s, _ in fused]
    assert scores == sorted(scores, reverse=True)
    assert all(-1e-9 <= s <= 1.0 + 1e-9 for s in scores)


def test_the_low_anchor_is_the_score_at_rank_norm_depth() -> None:
    n = NORM_DEPTH + 50
    vector = [(i, 1.0 - i / n) for i in range(n)]  # strictly decreasing
    fused = fuse_convex(vector, [], cands(list(range(n))), FusionParams(keyword_weight=0.0), NOW)
    score = {num: s for num, s, _ in fused}
    assert score[0] == 1.0
    assert score[NORM_DEPTH - 2] > 0.0
    assert score[NORM_DEPTH - 1] == 0.0 == score[n - 1]  # rank NORM_DEPTH and below clip to 0
    # the anchor does not move when fewer candidates beyond it are fetched
    short = fuse_convex(
        vector[:NORM_DEPTH], [], cands(list(range(n))), FusionParams(keyword_weight=0.0), NOW
    )
    assert {num: s for num, s, _ in short} == {i: score[i] for i in range(NORM_DEPTH)}


@given(
    ranked,
    ranked,
    st.sampled_from(["convex", "rrf"]),
    st.floats(0, 3),
    st.floats(0, 3),
    st.integers(1, 12),
)
def test_a_limited_fusion_is_the_head_of_the_whole_one_with_weights_and_recency(
    vector: list[tuple[int, float]],
    keyword: list[tuple[int, float]],
    method: str,
    w_insights: float,
    half_life: float,
    limit: int,
) -> None:
    layers = list(Layer)
    pool = {n: Candidate(n, layers[n % 3], NOW - 86400.0 * n) for n in range(0, 31, 2)}
    params = FusionParams(
        layer_weights={Layer.INTERACT: 1.0, Layer.INSIGHTS: w_insights, Layer.ASSETS: 2.0},
        recency_half_life_days=half_life,
        method=method,
    )
    fn = fuse_convex if method == "convex" else fuse
    whole = fn(vector, keyword, pool, params, NOW)
    head = fn(vector, keyword, pool, params, NOW, limit)
    assert head == whole[:limit]
    # Best first, ties by label; every score is its base × layer weight × recency.
    assert [(-s, n) for n, s, _ in whole] == sorted((-s, n) for n, s, _ in whole)
    for num, score, expl in whole:
        assert expl.fused_score == score
        assert expl.layer_weight == params.layer_weights[pool[num].layer]
        assert (expl.vector_rank is not None) or (expl.keyword_rank is not None)


@given(ranked, ranked, st.sampled_from(["convex", "rrf"]), st.floats(0.1, 3))
def test_no_candidates_means_every_label_with_the_one_layer_weight(
    vector: list[tuple[int, float]], keyword: list[tuple[int, float]], method: str, w: float
) -> None:
    everyone = {n: Candidate(n, list(Layer)[n % 3], NOW) for n in range(31)}
    params = FusionParams(layer_weights=dict.fromkeys(Layer, w), method=method)
    fn = fuse_convex if method == "convex" else fuse
    assert fn(vector, keyword, None, params, NOW, 5) == fn(
        vector, keyword, everyone, params, NOW, 5
    )


@given(ranked, ranked, st.sampled_from(["convex", "rrf"]), st.booleans(), st.integers(1, 12))
def test_a_fusion_without_explanations_keeps_labels_scores_and_order(
    vector: list[tuple[int, float]],
    keyword: list[tuple[int, float]],
    method: str,
    weighted: bool,
    limit: int,
) -> None:
    pool = {n: Candidate(n, list(Layer)[n % 3], NOW - 3600.0 * n) for n in range(0, 31, 2)}
    params = FusionParams(
        layer_weights={Layer.INTERACT: 1.0, Layer.INSIGHTS: 0.5, Layer.ASSETS: 2.0}
        if weighted
        else dict.fromkeys(Layer, 1.0),
        recency_half_life_days=2.0 if weighted else 0.0,
        method=method,
    )
    fn = fuse_convex if method == "convex" else fuse
    for candidates, head in ((pool, limit), (None, limit), (pool, None)):
        explained = fn(vector, keyword, candidates, params, NOW, head)
        bare = fn(vector, keyword, candidates, params, NOW, head, explain=False)
        assert [(n, s) for n, s, _ in bare] == [(n, s) for n, s, _ in explained]
        assert all(expl is UNEXPLAINED for _, _, expl in bare)
        assert all(expl is not UNEXPLAINED for _, _, expl in explained)


@given(
    ranked,
    st.floats(0, 5),
    st.floats(0, 5),
    st.floats(0.1, 3),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_a_vector_list_alone_fuses_as_the_general_path(
    vector: list[tuple[int, float]], wv: float, wk: float, w: float, limit: int | None
) -> None:
    """A vector-mode recall (no keyword list, every label counting, nothing explained) takes
    a shortcut: the same labels, the same floats, the same order as the full fusion."""
    params = FusionParams(
        vector_weight=wv, keyword_weight=wk, layer_weights=dict.fromkeys(Layer, w)
    )
    everyone = {n: Candidate(n, list(Layer)[n % 3], NOW) for n in range(31)}
    bare = fuse_convex(vector, [], None, params, NOW, limit, explain=False)
    for candidates, explain in ((None, True), (everyone, False), (everyone, True)):
        full = fuse_convex(vector, [], candidates, params, NOW, limit, explain=explain)
        assert [(n, s) for n, s, _ in bare] == [(n, s) for n, s, _ in full]
    assert all(expl is UNEXPLAINED for _, _, expl in bare)


def test_a_vector_list_alone_with_ties_and_clipped_scores() -> None:
    params = FusionParams(vector_weight=1.0, keyword_weight=0.0)
    tied = [(9, 0.5), (3, 0.5), (7, 0.5)]  # span 0: every label scores 1, ties by label
    assert fuse_convex(tied, [], None, params, NOW, explain=False) == [
        (3, 1.0, UNEXPLAINED),
        (7, 1.0, UNEXPLAINED),
        (9, 1.0, UNEXPLAINED),
    ]
    deep = [(n, 1.0 - n / 1000) for n in range(NORM_DEPTH + 5)]  # past the anchor: clipped
    fused = [(n, s) for n, s, _ in fuse_convex(deep, [], None, params, NOW, explain=False)]
    full = fuse_convex(deep, [], None, params, NOW, explain=True)
    assert fused == [(n, s) for n, s, _ in full]
    assert [s for _, s in fused][-6:] == [0.0] * 6
