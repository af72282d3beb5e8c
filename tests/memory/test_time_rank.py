"""Time-aware ranking: a question that asks when lifts conversation turns that mention a
time; notes and documents are never lifted."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from magray.config import load_settings
from magray.memory.backends.values import Candidate
from magray.memory.rank.context import ContextParams, with_context
from magray.memory.rank.temporal import asks_when, time_mentions
from magray.memory.records import Explanation, Filters, Layer, NewRecord, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

TIME_ONLY = ContextParams(time_weight=0.2)


def fused(scores: dict[int, float]) -> list[tuple[int, float, Explanation]]:
    ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(n, s, Explanation(fused_score=s)) for n, s in ordered]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("When did Ana adopt the cat?", True),
        ("  when is the next race", True),
        ("How long ago was Ben's birthday?", True),
        ("What year did they move to Porto?", True),
        ("what month is the wedding", True),
        ("What did Ana adopt?", False),
        ("How did the race go?", False),
        ("Whenever I run, my knee hurts", False),
        ("say when", False),
    ],
)
def test_asks_when(text: str, expected: bool) -> None:
    assert asks_when(text) is expected


def test_by_hand_the_bonus_goes_to_scored_turns_that_mention_a_time() -> None:
    cands = {
        1: Candidate(1, Layer.ASSETS, 0.0, "a"),
        2: Candidate(2, Layer.ASSETS, 0.0, "b"),
        3: Candidate(3, Layer.ASSETS, 0.0, None),  # a note: never lifted
        4: Candidate(4, Layer.ASSETS, 0.0, "c"),  # scores 0: not lifted
    }
    out = with_context(
        fused({1: 0.9, 2: 0.8, 3: 0.85, 4: 0.0}), cands, TIME_ONLY, explain=4, timed={2, 3, 4}
    )
    assert [(n, round(s, 6)) for n, s, _ in out] == [(2, 1.0), (1, 0.9), (3, 0.85), (4, 0.0)]
    assert out[0][2].context_score == pytest.approx(0.2)
    # without the weight the order is the fused one
    plain = with_context(
        fused({1: 0.9, 2: 0.8}), cands, ContextParams(context_weight=0.1), explain=0, timed={2}
    )
    assert [n for n, _, _ in plain][:2] == [1, 2]


@given(
    st.dictionaries(st.integers(1, 60), st.floats(0, 1), min_size=1, max_size=40),
    st.sets(st.integers(1, 60)),
)
def test_records_without_session_are_never_lifted(
    scores: dict[int, float], timed: set[int]
) -> None:
    cands = {n: Candidate(n, Layer.ASSETS, 0.0, None) for n in range(1, 62)}
    out = with_context(fused(scores), cands, TIME_ONLY, explain=0, timed=timed)
    assert [(n, s) for n, s, _ in out] == [(n, s) for n, s, _ in fused(scores)]


TURNS = [
    ("Ana: I adopted a cat from the shelter, a grey one", "s1"),
    ("Ben: lovely, what is her name", "s1"),
    ("Ana: we adopted the cat last week and named her Mist", "s2"),
    ("Ben: the shelter on Elm street has kittens too", "s2"),
]


def _store(memory: Memory, sessions: bool) -> None:
    for text, session in TURNS:
        memory.remember(
            NewRecord(text=text, session=session if sessions else None, layer=Layer.ASSETS)
        )


def test_a_when_question_lifts_the_turn_that_says_when() -> None:
    query = Query(text="When did Ana adopt the cat?", k=4, mode=SearchMode.KEYWORD)
    plain = {"search.context_weight": 0.0, "search.session_weight": 0.0}
    for weight in (0.0, 0.5):
        settings = load_settings({**plain, "search.time_weight": weight})
        with Memory(settings, embedder=HashEmbedder()) as memory:
            _store(memory, sessions=True)
            top = memory.recall(query, record_access=False)[0].record.text
            assert ("last week" in top) is (weight > 0), (weight, top)
            other = Query(text="Did Ana adopt the cat?", k=4, mode=SearchMode.KEYWORD)
            assert "last week" not in memory.recall(other, record_access=False)[0].record.text
            mentions = time_mentions(
                memory.backend, query.text, range(1, 10), Filters(), weight=weight
            )
            assert len(mentions) == (1 if weight > 0 else 0)


def test_notes_without_sessions_keep_their_order_for_when_questions() -> None:
    query = Query(text="When did Ana adopt the cat?", k=4, mode=SearchMode.KEYWORD)
    orders = []
    for weight in (0.0, 5.0):
        with Memory(load_settings({"search.time_weight": weight}), embedder=HashEmbedder()) as m:
            _store(m, sessions=False)
            m.remember(NewRecord(text="a turn of another talk", session="s9", layer=Layer.ASSETS))
            orders.append([h.record.text for h in m.recall(query, record_access=False)])
    assert orders[0] == orders[1]
    assert "last week" not in orders[0][0]
