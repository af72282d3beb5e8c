"""Expiry of memories: which records have outlived their layer's TTL, as pure decisions.

A record expires when ``now − start ≥ TTL`` of its layer. The clock starts when the record
entered its layer (``layer_since``, so a promotion restarts it); a record still in the layer
it was stored in that has an event time (``occurred_at``) counts from the event instead, so a
back-filled memory from March is as old in Interact as what happened in March. Pinned
records and Assets never expire; importance does not extend a TTL. Run promotion first, then expiry.
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


def ttl_start(record: Record) -> float:
    """When the TTL clock of ``record`` started (see the module docstring)."""
    if record.occurred_at is not None and record.layer_since <= record.created_at:
        return record.occurred_at
    return record.layer_since


def expire_decisions(records: Iterable[Record], now: float, *, ttls: Ttls) -> list[ExpiryDecision]:
    """The records past their layer's TTL (counted from ``ttl_start``), in input order."""
    expired: list[ExpiryDecision] = []
    for record in records:
        ttl = ttls.get(record.layer)
        if record.pinned or ttl is None:
            continue
        age = now - ttl_start(record)
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
    interact = settings.memory.ttl_interact_hours * HOUR
    insights = settings.memory.ttl_insights_days * DAY
    return {
        Layer.INTERACT: interact or None,
        Layer.INSIGHTS: insights or None,
        Layer.ASSETS: None,
    }
