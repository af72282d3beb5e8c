"""Runs promotion and expiry through the backend (the decisions are in promote.py/expire.py).

- ``promote`` loads every Interact/Insights record with its access history, (re)trains the
  learned scorer from the whole history (kept in ``meta`` with its training time), decides,
  and moves promoted records one layer up. Moving onto identical content already in the
  target layer merges the two (access counts add up) instead of duplicating.
- ``expire`` deletes records past their layer's TTL, archiving their access history first so
  the learned model keeps seeing what was *not* re-used.
- ``maybe_run`` does both automatically, at most once per ``memory.lifecycle_interval_minutes``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from magray.errors import ModelError, StoreLockedError
from magray.memory.access import KEPT
from magray.memory.backends.base import Expiry, Promotion
from magray.memory.lifecycle.expire import ExpiryDecision, expire_decisions, ttls_from_settings
from magray.memory.lifecycle.promote import Decision, LearnedScorer, RecordHistory, decide, train
from magray.memory.records import Layer, Record
from magray.memory.service import Memory

log = logging.getLogger("magray")

RETRAIN_EVERY = 6 * 3600.0  # seconds between retraining the learned scorer
META_MODEL = "promotion_model"
META_LAST_RUN = "lifecycle_last_run"


@dataclass
class LifecycleReport:
    dry_run: bool
    promoted: list[Decision] = field(default_factory=list)
    kept: list[Decision] = field(default_factory=list)
    expired: list[ExpiryDecision] = field(default_factory=list)
    model: dict[str, object] = field(default_factory=dict)


def _archived(memory: Memory) -> list[RecordHistory]:
    out: list[RecordHistory] = []
    for h in memory.backend.archived_histories():
        record = Record(
            id=h.record_id,
            text="",
            layer=h.layer,
            kind="archived",
            tags=(),
            project=None,
            session=None,
            source=None,
            created_at=h.created_at,
            updated_at=h.layer_since,
            layer_since=h.layer_since,
            last_access_at=None,
            access_count=0,
            importance=h.importance,
            pinned=h.pinned,
            promotion_score=None,
            content_hash="",
            embedding_model=None,
        )
        out.append(RecordHistory(record, h.access_times))
    return out


def _history(record: Record, times: Sequence[float]) -> RecordHistory:
    """A live record's kept access times; when the store had to drop some (``KEPT`` are
    kept), its access count says how many lie between the first and the last ones."""
    skipped = max(record.access_count - len(times), 0) if len(times) >= KEPT else 0
    return RecordHistory(record, tuple(times), skipped)


def scorer(memory: Memory, now: float, report: LifecycleReport) -> LearnedScorer | None:
    """The stored scorer if fresh, else one retrained from all history (None if too little)."""
    backend = memory.backend
    raw = backend.meta(META_MODEL)
    if raw:
        try:
            cached = LearnedScorer.from_dict(json.loads(raw))
            if cached.trained_at is not None and now - cached.trained_at < RETRAIN_EVERY:
                report.model = {"source": "stored", "samples": cached.n_samples}
                return cached
        except (ModelError, ValueError):
            log.warning("the stored promotion model is unreadable; retraining it.")
    times = backend.access_times()
    rows = backend.live_records(tuple(Layer))
    histories = [_history(r.record, times.get(r.num, ())) for r in rows]
    learned = train([*histories, *_archived(memory)], now)
    if learned is None:
        report.model = {"source": "rules only", "samples": 0}
        return None
    report.model = {"source": "trained", "samples": learned.n_samples}
    return learned


def promote(memory: Memory, *, dry_run: bool = False, now: float | None = None) -> LifecycleReport:
    """Score Interact and Insights records and move the winners one layer up."""
    now = time.time() if now is None else now
    report = LifecycleReport(dry_run=dry_run)
    backend = memory.backend
    learned = scorer(memory, now, report)
    times = backend.access_times()
    rows = backend.live_records((Layer.INTERACT, Layer.INSIGHTS))
    by_id = {r.record.id: r for r in rows}
    histories = [_history(r.record, times.get(r.num, ())) for r in rows]
    threshold = memory.settings.memory.promote_threshold
    ttls = ttls_from_settings(memory.settings)
    decisions = decide(histories, now, ttls=ttls, scorer=learned, threshold=threshold)
    for d in decisions:
        (report.promoted if d.promoted else report.kept).append(d)
    if dry_run:
        return report
    meta: dict[str, str] = {}
    if learned is not None and report.model.get("source") == "trained":
        meta[META_MODEL] = json.dumps(learned.to_dict())
    promotions = []
    for d in report.promoted:
        assert d.to_layer is not None
        src = by_id[d.record_id]
        promotions.append(Promotion(src.num, d.record_id, d.to_layer, d.score, d.reasons))
    backend.promote({d.record_id: d.score for d in decisions}, promotions, now=now, meta=meta)
    return report


def expire(memory: Memory, *, dry_run: bool = False, now: float | None = None) -> LifecycleReport:
    """Delete unpinned records past their layer's TTL (their history is archived)."""
    now = time.time() if now is None else now
    report = LifecycleReport(dry_run=dry_run)
    rows = memory.backend.live_records((Layer.INTERACT, Layer.INSIGHTS))
    report.expired = expire_decisions(
        [r.record for r in rows], now, ttls=ttls_from_settings(memory.settings)
    )
    if dry_run or not report.expired:
        return report
    by_id = {r.record.id: r for r in rows}
    memory.backend.expire(
        [Expiry(by_id[e.record_id].num, e.reason) for e in report.expired], now=now
    )
    return report


def maybe_run(memory: Memory, now: float | None = None) -> LifecycleReport | None:
    """Promote then expire if automatic lifecycle is on and the interval has passed."""
    settings = memory.settings
    if not settings.memory.auto_lifecycle:
        return None
    now = time.time() if now is None else now
    last = memory.backend.meta(META_LAST_RUN)
    interval = settings.memory.lifecycle_interval_minutes * 60.0
    if last is not None and now - float(last) < interval:
        return None
    try:
        memory.backend.set_meta(META_LAST_RUN, repr(now))
        report = promote(memory, now=now)
        report.expired = expire(memory, now=now).expired
    except StoreLockedError:
        return None  # another process is writing; it or a later run will do it
    if report.promoted or report.expired:
        log.info(
            "lifecycle: promoted %d, expired %d record(s)",
            len(report.promoted),
            len(report.expired),
        )
    return report
