"""``positional``: constructors of frozen slotted values without ``__init__``'s lookups."""

from __future__ import annotations

import dataclasses

import pytest

from magray.memory.positional import positional
from magray.memory.records import Explanation, Filters, Hit, Layer, Record, Source


def test_a_positional_record_is_the_record_field_by_field() -> None:
    values = (
        "abc123", "the ferry", Layer.ASSETS, "fact", ("a",), "proj", "s1",
        Source("/a.md", 1, 2, 3, 4), 10.0, 11.0, 12.0, None, 5, 0.25, True, 0.75,
        "hash", "model", 9.0,
    )  # fmt: skip
    made, plain = positional(Record)(*values), Record(*values)
    assert type(made) is Record and made == plain and hash(made) == hash(plain)
    assert dataclasses.astuple(made) == dataclasses.astuple(plain)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "changed"  # type: ignore[misc]
    hit = positional(Hit)(made, 0.5, Explanation(fused_score=0.5))
    assert hit == Hit(plain, 0.5, Explanation(fused_score=0.5))


def test_only_slotted_dataclasses_without_checks_get_one() -> None:
    with pytest.raises(TypeError, match="__post_init__"):
        positional(Filters)  # it checks its fields: always through __init__

    class Plain:
        pass

    with pytest.raises(TypeError, match="slotted dataclass"):
        positional(Plain)
