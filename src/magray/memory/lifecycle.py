"""Runs promotion and expiry against the store (the decisions are in promote.py/expire.py).

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
from collections import defaultdict
from dataclasses import dataclass, field

from magray.errors import ModelError, StoreLockedError
from magray.memory.expire import ExpiryDecision, expire_decisions, ttls_from_settings
from magray.memory.promote import Decision, LearnedScorer, RecordHistory, decide, train
from magray.memory.records import Layer, Record
from magray.memory.service import Memory
from magray.memory.store import RECORD_COLUMNS, Store, StoredRow, row_to_record

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


def _access_times(store: Store) -> dict[int, list[float]]:
    times: dict[int, list[float]] = defaultdict(list)
    for num, at in store.conn.execute("SELECT num, at FROM access_log ORDER BY num, at"):
        times[int(num)].append(float(at))
    return times


def _live(store: Store, layers: tuple[Layer, ...]) -> list[StoredRow]:
    marks = ",".join("?" * len(layers))
    rows = store.conn.execute(
        f"SELECT {RECORD_COLUMNS} FROM records WHERE layer IN ({marks}) ORDER BY num",
        [str(x) for x in layers],
    ).fetchall()
    return [row_to_record(r) for r in rows]


def _archived(store: Store) -> list[RecordHistory]:
    out: list[RecordHistory] = []
    for rid, layer, created, since, importance, pinned, times in store.conn.execute(
        "SELECT record_id, layer, created_at, layer_since, importance, pinned, access_times"
        " FROM history_archive"
    ):
        record = Record(
            id=rid,
            text="",
            layer=Layer(layer),
            kind="archived",
            tags=(),
            project=None,
            session=None,
            source=None,
            created_at=created,
            updated_at=since,
            layer_since=since,
            last_access_at=None,
            access_count=0,
            importance=importance,
            pinned=bool(pinned),
            promotion_score=None,
            content_hash="",
            embedding_model=None,
        )
        out.append(RecordHistory(record, tuple(sorted(json.loads(times)))))
    return out


def scorer(memory: Memory, now: float, report: LifecycleReport) -> LearnedScorer | None:
    """The stored scorer if fresh, else one retrained from all history (None if too little)."""
    store = memory.store
    raw = store.meta(META_MODEL)
    if raw:
        try:
            cached = LearnedScorer.from_dict(json.loads(raw))
            if cached.trained_at is not None and now - cached.trained_at < RETRAIN_EVERY:
                report.model = {"source": "stored", "samples": cached.n_samples}
                return cached
        except (ModelError, ValueError):
            log.warning("the stored promotion model is unreadable; retraining it.")
    times = _access_times(store)
    rows = _live(store, tuple(Layer))
    histories = [RecordHistory(r.record, tuple(times.get(r.num, ()))) for r in rows]
    learned = train([*histories, *_archived(store)], now)
    if learned is None:
        report.model = {"source": "rules only", "samples": 0}
        return None
    report.model = {"source": "trained", "samples": learned.n_samples}
    return learned


def promote(memory: Memory, *, dry_run: bool = False, now: float | None = None) -> LifecycleReport:
    """Score Interact and Insights records and move the winners one layer up."""
    now = time.time() if now is None else now
    report = LifecycleReport(dry_run=dry_run)
    store = memory.store
    learned = scorer(memory, now, report)
    times = _access_times(store)
    rows = _live(store, (Layer.INTERACT, Layer.INSIGHTS))
    by_id = {r.record.id: r for r in rows}
    histories = [RecordHistory(r.record, tuple(times.get(r.num, ()))) for r in rows]
    threshold = memory.settings.get_float("memory.promote_threshold")
    ttls = ttls_from_settings(memory.settings)
    decisions = decide(histories, now, ttls=ttls, scorer=learned, threshold=threshold)
    for d in decisions:
        (report.promoted if d.promoted else report.kept).append(d)
    if dry_run:
        return report
    with store.write() as conn:
        if learned is not None and report.model.get("source") == "trained":
            Store.set_meta(conn, META_MODEL, json.dumps(learned.to_dict()))
        conn.executemany(
            "UPDATE records SET promotion_score = ? WHERE id = ?",
            [(d.score, d.record_id) for d in decisions],
        )
        for d in report.promoted:
            assert d.to_layer is not None
            src = by_id[d.record_id]
            twin = conn.execute(
                "SELECT num FROM records WHERE layer = ? AND project = ? AND content_hash = ?",
                (str(d.to_layer), src.record.project or "", src.record.content_hash),
            ).fetchone()
            action = "promote"
            if twin is not None:
                action = "merge"
                conn.execute(
                    "UPDATE records SET access_count = access_count + ?, pinned = MAX(pinned, ?),"
                    " importance = MAX(importance, ?) WHERE num = ?",
                    (
                        src.record.access_count,
                        int(src.record.pinned),
                        src.record.importance,
                        twin[0],
                    ),
                )
                conn.execute("UPDATE access_log SET num = ? WHERE num = ?", (twin[0], src.num))
                conn.execute("DELETE FROM records WHERE num = ?", (src.num,))
            else:
                conn.execute(
                    "UPDATE records SET layer = ?, layer_since = ?, updated_at = ? WHERE num = ?",
                    (str(d.to_layer), now, now, src.num),
                )
            conn.execute(
                "INSERT INTO lifecycle_log (at, record_id, action, from_layer, to_layer, score,"
                " reasons) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    d.record_id,
                    action,
                    str(d.from_layer),
                    str(d.to_layer),
                    d.score,
                    json.dumps(list(d.reasons), ensure_ascii=False),
                ),
            )
    return report


def expire(memory: Memory, *, dry_run: bool = False, now: float | None = None) -> LifecycleReport:
    """Delete unpinned records past their layer's TTL (their history is archived)."""
    now = time.time() if now is None else now
    report = LifecycleReport(dry_run=dry_run)
    store = memory.store
    rows = _live(store, (Layer.INTERACT, Layer.INSIGHTS))
    report.expired = expire_decisions(
        [r.record for r in rows], now, ttls=ttls_from_settings(memory.settings)
    )
    if dry_run or not report.expired:
        return report
    by_id = {r.record.id: r for r in rows}
    times = _access_times(store)
    with store.write() as conn:
        for e in report.expired:
            src = by_id[e.record_id]
            r = src.record
            conn.execute(
                "INSERT OR REPLACE INTO history_archive (record_id, layer, created_at,"
                " layer_since, importance, pinned, access_times, archived_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    r.id,
                    str(r.layer),
                    r.created_at,
                    r.layer_since,
                    r.importance,
                    int(r.pinned),
                    json.dumps(times.get(src.num, [])),
                    now,
                ),
            )
            conn.execute("DELETE FROM records WHERE num = ?", (src.num,))
            conn.execute(
                "INSERT INTO lifecycle_log (at, record_id, action, from_layer, reasons)"
                " VALUES (?, ?, 'expire', ?, ?)",
                (now, r.id, str(r.layer), json.dumps([e.reason])),
            )
    return report


def maybe_run(memory: Memory, now: float | None = None) -> LifecycleReport | None:
    """Promote then expire if automatic lifecycle is on and the interval has passed."""
    settings = memory.settings
    if not settings.get_bool("memory.auto_lifecycle"):
        return None
    now = time.time() if now is None else now
    last = memory.store.meta(META_LAST_RUN)
    interval = settings.get_float("memory.lifecycle_interval_minutes") * 60.0
    if last is not None and now - float(last) < interval:
        return None
    try:
        with memory.store.write() as conn:
            Store.set_meta(conn, META_LAST_RUN, repr(now))
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
