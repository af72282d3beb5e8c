"""Memories in a prompt are budgeted in tokens: best first, the last one cut, the rest left out."""

from __future__ import annotations

from collections.abc import Sequence

from magray.agent.session import MIN_MEMORY_TOKENS, UsedMemory, fit_memories
from magray.llm.base import Message
from magray.memory.records import Layer


def words(messages: Sequence[Message]) -> int:
    return sum(len(m.content.split()) + 4 for m in messages)


def mem(i: int, n: int) -> UsedMemory:
    return UsedMemory(f"m{i}", Layer.ASSETS, 1.0 / i, " ".join(f"w{i}" for _ in range(n)), None)


def test_fits_in_rank_order_and_cuts_the_last() -> None:
    kept = fit_memories([mem(1, 100), mem(2, 100), mem(3, 100)], 280, words)
    assert [m.id for m in kept] == ["m1", "m2", "m3"]
    assert kept[0].text == mem(1, 100).text
    assert kept[2].text.endswith(" …") and 70 <= len(kept[2].text.split()) <= 81
    assert sum(len(m.text.split()) for m in kept) <= 282


def test_a_remainder_too_small_to_help_is_left_out() -> None:
    kept = fit_memories([mem(1, 100), mem(2, 100)], 100 + MIN_MEMORY_TOKENS - 1, words)
    assert [m.id for m in kept] == ["m1"]
    assert fit_memories([mem(1, 10)], 0, words) == []
