"""Expiry: TTL boundaries counted from layer_since; pinned records and Assets stay."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from magray.config import load_settings
from magray.memory.lifecycle.expire import (
    DAY,
    DEFAULT_TTLS,
    HOUR,
    expire_decisions,
    ttls_from_settings,
)
from magray.memory.records import Layer
from tests.memory.test_promote import NOW, make_record


def test_interact_expires_exactly_at_its_ttl() -> None:
    alive = make_record("alive", created_at=NOW - 24 * HOUR + 1)
    dead = make_record("dead", created_at=NOW - 24 * HOUR)
    (decision,) = expire_decisions([alive, dead], NOW, ttls=DEFAULT_TTLS)
    assert decision.record_id == "dead" and decision.layer is Layer.INTERACT
    assert decision.age_hours == 24.0 and decision.ttl_hours == 24.0
    assert decision.reason == "in interact for 24 h without promotion (TTL 24 h)"


def test_ttl_counts_from_layer_since_not_creation() -> None:
    promoted = make_record(layer=Layer.INSIGHTS, created_at=NOW - 200 * DAY)
    assert (
        expire_decisions([replace(promoted, layer_since=NOW - 89 * DAY)], NOW, ttls=DEFAULT_TTLS)
        == []
    )
    (d,) = expire_decisions([replace(promoted, layer_since=NOW - 91 * DAY)], NOW, ttls=DEFAULT_TTLS)
    assert d.reason == "in insights for 91.0 days without promotion (TTL 90.0 days)"


def test_pinned_assets_and_importance() -> None:
    old = NOW - 1000 * DAY
    pinned = make_record("p", created_at=old, pinned=True)
    asset = make_record("a", layer=Layer.ASSETS, created_at=old)
    important = make_record("i", created_at=old, importance=1.0)
    expired = expire_decisions([pinned, asset, important], NOW, ttls=DEFAULT_TTLS)
    assert [d.record_id for d in expired] == ["i"]  # importance does not extend a TTL


def test_ttls_from_settings() -> None:
    ttls = ttls_from_settings(load_settings())
    assert ttls == DEFAULT_TTLS
    custom = load_settings({"memory.ttl_interact_hours": 2, "memory.ttl_insights_days": 0})
    assert ttls_from_settings(custom) == {
        Layer.INTERACT: 2 * HOUR,
        Layer.INSIGHTS: None,
        Layer.ASSETS: None,
    }


@given(
    layer=st.sampled_from(list(Layer)),
    age=st.floats(0, 400 * DAY),
    pinned=st.booleans(),
)
def test_expiry_matches_the_ttl_rule(layer: Layer, age: float, pinned: bool) -> None:
    rec = make_record(layer=layer, created_at=NOW - age, pinned=pinned)
    ttl = DEFAULT_TTLS[layer]
    expected = not pinned and ttl is not None and age >= ttl
    assert bool(expire_decisions([rec], NOW, ttls=DEFAULT_TTLS)) == expected
