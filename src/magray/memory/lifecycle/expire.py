"""Expiry of memories: which records have outlived their layer's TTL, as pure decisions.

A record expires when ``now − layer_since ≥ TTL`` of its layer (the TTL counts from when
it entered the layer, so a promotion restarts the clock). Pinned records and Assets never
expire; importance does not extend a TTL. Run promotion first, then expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from magray.config import Settings
from magray.memory.records import Layer, Record

Ttls = Mapping[Layer, float | None]  # seconds; None (or a missing layer) = never expires

HOUR = 3600.0
DAY = 86400.0
DEFAULT_TTLS: Ttls = {Layer.INTERACT: 24 * HOUR, Layer.INSIGHTS: 90 * DAY, Layer.ASSETS: None}


@dataclass(frozen=True, slots=True)
class ExpiryDecision:
    """A record that ``expire`` removes, and why."""

    record_id: str
    layer: Layer
    age_hours: float  # time in its layer
    ttl_hours: float
    reason: str


def duration(hours: float) -> str:
    """A short human duration: ``40 min``, ``30 h``, ``3.5 days``."""
    if hours < 1:
        return f"{hours * 60:.0f} min"
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.1f} days"


def expire_decisions(records: Iterable[Record], now: float, *, ttls: Ttls) -> list[ExpiryDecision]:
    """The records past their layer's TTL (counted from ``layer_since``), in input order."""
    expired: list[ExpiryDecision] = []
    for record in records:
        ttl = ttls.get(record.layer)
        if record.pinned or ttl is None:
            continue
        age = now - record.layer_since
        if age >= ttl:
            age_h, ttl_h = age / HOUR, ttl / HOUR
            reason = (
                f"in {record.layer.value} for {duration(age_h)} without promotion "
                f"(TTL {duration(ttl_h)})"
            )
            expired.append(ExpiryDecision(record.id, record.layer, age_h, ttl_h, reason))
    return expired


def ttls_from_settings(settings: Settings) -> dict[Layer, float | None]:
    """Each layer's TTL in seconds from settings; None = never expires (a 0 setting too)."""
    interact = float(settings["memory.ttl_interact_hours"]) * HOUR
    insights = float(settings["memory.ttl_insights_days"]) * DAY
    return {
        Layer.INTERACT: interact or None,
        Layer.INSIGHTS: insights or None,
        Layer.ASSETS: None,
    }
