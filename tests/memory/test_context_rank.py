"""Context ranking: neighbouring turns and sessions; notes keep their order; ranks do not
depend on k."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magray.config import load_settings
from magray.memory.backends.values import Candidate
from magray.memory.rank.context import ContextParams, neighbours, with_context
from magray.memory.records import Explanation, Layer, NewRecord, Query, SearchMode
from magray.memory.search.keywords import NORM_DEPTH
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

ON = ContextParams(context_weight=0.5, session_weight=0.6)


def fused(scores: dict[int, float]) -> list[tuple[int, float, Explanation]]:
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(n, s, Explanation(fused_score=s)) for n, s in ordered]


def test_by_hand_neighbour_and_session_gains() -> None:
    cands = {
        1: Candidate(1, Layer.ASSETS, 0.0, "a"),
        2: Candidate(2, Layer.ASSETS, 0.0, "a"),  # the answer after question 1: no own score
        3: Candidate(3, Layer.ASSETS, 0.0, "b"),
        4: Candidate(4, Layer.ASSETS, 0.0, None),
    }
    out = with_context(fused({1: 0.9, 3: 0.5, 4: 0.6}), cands, ON, explain=10)
    got = {n: round(s, 6) for n, s, _ in out}
    session_a, session_b = 0.9 / 3, 0.5 / 3
    assert got == {
        1: round(0.9 + 0.6 * session_a, 6),
        2: round(0.5 * 0.9 + 0.6 * session_a, 6),
        3: round(0.5 + 0.6 * session_b, 6),
        4: 0.6,
    }
    assert [n for n, _, _ in out] == [1, 2, 3, 4]
    expl = out[1][2]
    assert expl.context_score == pytest.approx(0.5 * 0.9 + 0.6 * session_a)


def test_a_neighbour_in_another_session_gives_nothing() -> None:
    cands = {1: Candidate(1, Layer.ASSETS, 0.0, "a"), 2: Candidate(2, Layer.ASSETS, 0.0, "b")}
    out = with_context(fused({1: 0.9}), cands, ContextParams(context_weight=1.0), explain=0)
    assert [n for n, _, _ in out] == [1]


@given(st.dictionaries(st.integers(1, 60), st.floats(0, 1), min_size=1, max_size=40))
def test_records_without_session_keep_their_order(scores: dict[int, float]) -> None:
    cands = {n: Candidate(n, Layer.ASSETS, 0.0, None) for n in scores}
    cands.update({n: Candidate(n, Layer.ASSETS, 0.0, None) for n in neighbours(scores)})
    out = with_context(fused(scores), cands, ON, explain=0)
    assert [(n, s) for n, s, _ in out] == [(n, s) for n, s, _ in fused(scores)]


def test_neighbours() -> None:
    assert neighbours([1, 2, 5]) == {3, 4, 6}


def conversation() -> list[NewRecord]:
    """A LoCoMo-like history: sessions of short turns, answers after questions."""
    topics = ["pottery class", "camping trip", "adoption agency", "violin lessons", "marathon"]
    items = []
    for s, topic in enumerate(topics):
        for i in range(12):
            speaker = "Ana" if i % 2 == 0 else "Ben"
            text = f'{speaker} said, "turn {i} of the talk about the {topic}, detail {i * 7 + s}"'
            items.append(NewRecord(text=text, layer=Layer.ASSETS, kind="turn", session=f"s{s}"))
    return items


@pytest.mark.parametrize("mode", list(SearchMode))
def test_ranks_do_not_depend_on_k_on_a_conversation(mode: SearchMode) -> None:
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        memory.remember_many(conversation())
        memory.remember(NewRecord(text="a note about the marathon route", layer=Layer.ASSETS))
        for text in ("camping trip detail", "what did Ana say about the marathon", "violin"):
            full = memory.recall(Query(text=text, k=50, mode=mode), record_access=False)
            for k in (1, 5, 10, 25):
                top = memory.recall(Query(text=text, k=k, mode=mode), record_access=False)
                assert [h.record.id for h in top] == [h.record.id for h in full[:k]], (text, k)


def test_context_lifts_the_answer_after_a_matching_question() -> None:
    turns = [
        ("Ana: where did you go for the holidays?", "s1"),
        ("Ben: we went to Porto and ate pastries", "s1"),
        ("Ana: the weather was grey all week", "s2"),
        ("Ben: the cat knocked the vase over", "s2"),
    ]
    query = Query(text="holidays", k=4, mode=SearchMode.KEYWORD)
    for weight, expected in ((0.0, 1), (0.5, 2)):
        overrides = {"search.context_weight": weight, "search.session_weight": 0.0}
        with Memory(load_settings(overrides), embedder=HashEmbedder()) as memory:
            for text, session in turns:
                memory.remember(NewRecord(text=text, session=session, layer=Layer.ASSETS))
            texts = [h.record.text for h in memory.recall(query, record_access=False)]
            assert len(texts) == expected and "holidays" in texts[0]
            assert expected == 1 or "Porto" in texts[1]


@pytest.mark.parametrize("sessions", [False, True])
def test_ranks_do_not_depend_on_k_beyond_the_normalisation_depth(sessions: bool) -> None:
    """A store larger than the normalisation pool, as notes and as a conversation: a k above
    the pool (which fetches deeper lists) ranks its head exactly as a small k does."""
    words = ["pottery", "camping", "marathon", "violin", "garden", "recipe", "museum", "train"]
    items = [
        NewRecord(
            text=f"{words[i % 8]} {words[(i * 3) % 8]} note {i} about {words[(i * 5 + 1) % 8]}",
            layer=Layer.ASSETS,
            session=f"s{i // 20}" if sessions else None,
        )
        for i in range(2 * NORM_DEPTH + 100)
    ]
    with Memory(load_settings(), embedder=HashEmbedder()) as memory:
        memory.remember_many(items)
        for text in ("camping marathon", "a violin recipe in the museum"):
            deep = memory.recall(Query(text=text, k=NORM_DEPTH + 50), record_access=False)
            for k in (5, 50):
                top = memory.recall(Query(text=text, k=k), record_access=False)
                assert [h.record.id for h in top] == [h.record.id for h in deep[:k]], (text, k)
