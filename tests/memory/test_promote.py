"""Promotion: rule scores, the learned scorer, leak-free training and decisions."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magray.errors import ModelError, UsageError
from magray.memory.lifecycle.expire import DAY, DEFAULT_TTLS, HOUR
from magray.memory.lifecycle.promote import (
    FEATURE_NAMES,
    MIN_TRAINING_EXAMPLES,
    SNAPSHOTS_PER_RECORD,
    Decision,
    LearnedScorer,
    RecordHistory,
    decide,
    features,
    rule_score,
    train,
    training_set,
)
from magray.memory.records import Layer, Record

NOW = 1_800_000_000.0


def make_record(
    id: str = "r1",
    *,
    layer: Layer = Layer.INTERACT,
    created_at: float = NOW - 10 * HOUR,
    layer_since: float | None = None,
    importance: float = 0.5,
    pinned: bool = False,
) -> Record:
    return Record(
        id=id,
        text="a memory",
        layer=layer,
        kind="note",
        tags=(),
        project=None,
        session=None,
        source=None,
        created_at=created_at,
        updated_at=created_at,
        layer_since=created_at if layer_since is None else layer_since,
        last_access_at=None,
        access_count=0,
        importance=importance,
        pinned=pinned,
        promotion_score=None,
        content_hash="0" * 64,
        embedding_model=None,
    )


def history(record: Record, *hours_ago: float) -> RecordHistory:
    return RecordHistory(record, tuple(sorted(NOW - h * HOUR for h in hours_ago)))


def only(
    hist: RecordHistory, scorer: LearnedScorer | None = None, rule_weight: float = 0.5
) -> Decision:
    (decision,) = decide([hist], NOW, ttls=DEFAULT_TTLS, scorer=scorer, rule_weight=rule_weight)
    return decision


# --- rules -----------------------------------------------------------------------------


def test_frequent_recent_access_promotes_interact_to_insights() -> None:
    d = only(history(make_record(), 9, 6, 4, 2, 1))
    assert d.to_layer is Layer.INSIGHTS and d.model_score is None
    assert "accessed 5× in 10 h in interact" in d.reasons
    assert any(r.startswith("rules only") for r in d.reasons)


def test_idle_record_stays() -> None:
    d = only(history(make_record(created_at=NOW - 20 * HOUR), 19))
    assert d.to_layer is None
    assert "idle 19 h" in d.reasons
    assert any("< threshold 0.60" in r for r in d.reasons)


def test_never_accessed_record_scores_low() -> None:
    score, reasons = rule_score(history(make_record()), NOW, DEFAULT_TTLS)
    assert score == pytest.approx(0.15)
    assert reasons == ["not accessed in 10 h in interact", "importance 0.50"]


def test_pinned_and_important_interact_records_promote_at_once() -> None:
    fresh = NOW - 60  # one minute old: under the 1 h minimum
    pinned = only(history(make_record(created_at=fresh, pinned=True)))
    important = only(history(make_record(created_at=fresh, importance=0.95)))
    assert pinned.to_layer is Layer.INSIGHTS and important.to_layer is Layer.INSIGHTS
    assert pinned.rule_score == 1.0 and "pinned" in pinned.reasons


def test_min_time_in_layer_is_respected() -> None:
    busy = make_record(created_at=NOW - 0.5 * HOUR)
    d = only(RecordHistory(busy, tuple(NOW - s for s in (1500, 1200, 900, 600, 300, 60))))
    assert d.score >= 0.6 and d.to_layer is None
    assert "in interact for 30 min, under the 1 h minimum" in d.reasons


def test_insights_need_three_days_even_when_pinned() -> None:
    young = make_record(layer=Layer.INSIGHTS, created_at=NOW - 5 * DAY, layer_since=NOW - DAY)
    old = replace(young, layer_since=NOW - 4 * DAY)
    assert only(history(replace(young, pinned=True))).to_layer is None
    assert only(history(replace(old, pinned=True))).to_layer is Layer.ASSETS
    busy = history(old, 90, 70, 50, 30, 10, 2)
    assert only(busy).to_layer is Layer.ASSETS
    assert only(history(old, 90)).to_layer is None


def test_assets_never_move() -> None:
    rec = make_record(layer=Layer.ASSETS, pinned=True, importance=1.0)
    d = only(history(rec, 5, 4, 3, 2, 1))
    assert d.to_layer is None and "assets is the top layer: never promoted" in d.reasons


def test_invalid_parameters_and_unsorted_times_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        decide([], NOW, ttls=DEFAULT_TTLS, threshold=1.5)
    with pytest.raises(UsageError):
        RecordHistory(make_record(), (NOW, NOW - 1))


# --- features and training -----------------------------------------------------------


def test_features_follow_feature_names() -> None:
    rec = make_record(created_at=NOW - 47 * HOUR, importance=0.8)
    x = features(history(rec, 30, 2, 1), NOW)
    named = dict(zip(FEATURE_NAMES, x, strict=True))
    assert named["log_accesses"] == pytest.approx(np.log1p(3))
    assert named["log_accesses_24h"] == pytest.approx(np.log1p(2))
    assert named["accesses_per_day"] == pytest.approx(3 / (47 / 24 + 1))
    assert named["recency"] == pytest.approx(0.5 ** (1 / 24))
    assert named["importance"] == 0.8


def test_snapshot_features_do_not_see_later_accesses() -> None:
    rec = make_record(created_at=NOW - 30 * DAY, layer=Layer.INSIGHTS, layer_since=NOW - DAY)
    t0 = rec.created_at + 12 * HOUR
    early = RecordHistory(rec, (rec.created_at + HOUR, rec.created_at + 2 * HOUR))
    late = RecordHistory(rec, (*early.access_times, t0 + 1, t0 + 3 * HOUR, NOW - 60))
    assert np.array_equal(features(early, t0), features(late, t0))
    x_early, y_early = training_set([early], NOW)
    x_late, y_late = training_set([late], NOW)
    assert np.array_equal(x_early[0], x_late[0])  # the t0 = 12 h snapshot
    assert y_early[0] == 0.0 and y_late[0] == 1.0


def test_training_waits_for_the_label_window_to_pass() -> None:
    rec = make_record(created_at=NOW - 30 * HOUR)
    x, y = training_set([history(rec, 1)], NOW)  # t0 = 12 h: window ends at 36 h
    assert x.shape == (0, len(FEATURE_NAMES)) and y.shape == (0,)
    x, _ = training_set([history(replace(rec, created_at=NOW - 40 * HOUR))], NOW)
    assert x.shape == (1, len(FEATURE_NAMES))


def synthetic(n: int, seed: int) -> list[RecordHistory]:
    """Records whose re-use depends on importance, with accesses before t0 as noise."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        created = NOW - 5 * DAY - float(rng.uniform(0, DAY))
        importance = float(rng.uniform(0, 1))
        early = created + np.sort(rng.uniform(0, 12 * HOUR, int(rng.integers(0, 6))))
        times = list(early)
        if importance > 0.5:
            times.append(created + 12 * HOUR + float(rng.uniform(1, 20 * HOUR)))
        rec = make_record(f"r{i:03d}", created_at=created, importance=importance)
        out.append(RecordHistory(rec, tuple(sorted(times))))
    return out


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (pos.size * neg.size))


def first_snapshots(hists: list[RecordHistory]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and rule scores at each record's first snapshot (t0 = 12 h)."""
    x, y, rules = [], [], []
    for h in hists:
        t0 = h.record.created_at + 12 * HOUR
        x.append(features(h, t0))
        y.append(float(any(t0 < t <= t0 + DAY for t in h.access_times)))
        rules.append(rule_score(h, t0, DEFAULT_TTLS)[0])
    return np.array(x), np.array(y), np.array(rules)


def test_learned_model_beats_rules_and_is_deterministic() -> None:
    scorer = train(synthetic(120, seed=1), NOW)
    assert scorer is not None and scorer.trained_at == NOW
    assert scorer.coefficients["importance"] == max(scorer.coefficients.values())
    x, y, rules = first_snapshots(synthetic(200, seed=2))
    model_auc = auc(scorer.predict(x), y)
    assert model_auc > 0.95 and model_auc > auc(rules, y) + 0.05
    again = train(synthetic(120, seed=1), NOW)
    assert again is not None and again.to_dict() == scorer.to_dict()


def test_decision_with_a_model_combines_and_explains() -> None:
    scorer = train(synthetic(120, seed=1), NOW)
    assert scorer is not None
    d = only(history(make_record(importance=0.8), 3), scorer, rule_weight=0.25)
    assert d.model_score is not None
    expected = 0.25 * d.rule_score + 0.75 * d.model_score
    assert d.score == pytest.approx(expected)
    assert any(r.startswith("model ") and "importance" in r for r in d.reasons)


def test_too_little_history_falls_back_to_rules() -> None:
    hists = synthetic(MIN_TRAINING_EXAMPLES // SNAPSHOTS_PER_RECORD, seed=3)
    x, y = training_set(hists, NOW)
    assert y.size < MIN_TRAINING_EXAMPLES
    assert train(hists, NOW) is None
    with pytest.raises(UsageError, match="needs ≥ 50 examples"):
        LearnedScorer.fit(x, y)


def test_scorer_roundtrips_through_json() -> None:
    scorer = train(synthetic(120, seed=1), NOW)
    assert scorer is not None
    back = LearnedScorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
    assert back == scorer
    x, _, _ = first_snapshots(synthetic(20, seed=4))
    assert np.array_equal(back.predict(x), scorer.predict(x))
    stale = {**scorer.to_dict(), "feature_names": ["old"]}
    with pytest.raises(ModelError):
        LearnedScorer.from_dict(stale)


# --- properties ------------------------------------------------------------------------

SCORER = train(synthetic(120, seed=1), NOW)

record_st = st.builds(
    make_record,
    id=st.text("abc", min_size=1, max_size=4),
    layer=st.sampled_from(list(Layer)),
    created_at=st.floats(NOW - 200 * DAY, NOW + HOUR),
    importance=st.floats(-1, 2),
    pinned=st.booleans(),
)


@st.composite
def histories_st(draw: st.DrawFn) -> RecordHistory:
    rec = draw(record_st)
    since = draw(st.floats(rec.created_at, NOW + HOUR))
    times = draw(st.lists(st.floats(rec.created_at, NOW + DAY), max_size=12))
    return RecordHistory(replace(rec, layer_since=since), tuple(sorted(times)))


@settings(max_examples=150, deadline=None)
@given(
    hists=st.lists(histories_st(), max_size=6),
    use_model=st.booleans(),
    threshold=st.floats(0, 1),
    rule_weight=st.floats(0, 1),
)
def test_decisions_are_bounded_one_step_up_and_deterministic(
    hists: list[RecordHistory], use_model: bool, threshold: float, rule_weight: float
) -> None:
    scorer = SCORER if use_model else None
    first = decide(
        hists, NOW, ttls=DEFAULT_TTLS, scorer=scorer, threshold=threshold, rule_weight=rule_weight
    )
    again = decide(
        hists, NOW, ttls=DEFAULT_TTLS, scorer=scorer, threshold=threshold, rule_weight=rule_weight
    )
    assert first == again
    for h, d in zip(hists, first, strict=True):
        assert 0.0 <= d.score <= 1.0 and 0.0 <= d.rule_score <= 1.0
        assert d.model_score is None or 0.0 <= d.model_score <= 1.0
        assert d.from_layer is h.record.layer
        assert d.to_layer is None or d.to_layer is h.record.layer.next
        assert (d.model_score is None) == (not use_model)


def test_accesses_skipped_by_the_bounded_history_still_count() -> None:
    from magray.memory.access import KEEP_FIRST, bounded

    rec = make_record(created_at=NOW - 40 * DAY)
    every = [NOW - 40 * DAY + i * 2 * HOUR for i in range(1, 401)]  # 400 accesses, 33 days
    kept = bounded(every)
    full = RecordHistory(rec, tuple(every))
    short = RecordHistory(rec, tuple(kept), skipped=len(every) - len(kept))
    names = list(FEATURE_NAMES)
    f_full, f_short = features(full, NOW), features(short, NOW)
    for exact in ("log_accesses", "accesses_per_day", "log_accesses_24h", "recency"):
        assert f_short[names.index(exact)] == pytest.approx(f_full[names.index(exact)])
    # the days inside the gap are an estimate: at most one per skipped access
    days = names.index("log_distinct_days")
    assert f_short[days] == pytest.approx(f_full[days])
    # before the gap ends, only what was kept is seen
    early = every[KEEP_FIRST - 1] + 1
    assert features(short, early)[names.index("log_accesses")] == pytest.approx(
        np.log1p(KEEP_FIRST)
    )
    assert rule_score(short, NOW, DEFAULT_TTLS)[1][0].startswith("accessed 400×")
