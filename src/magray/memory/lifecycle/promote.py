"""Promotion of memories: pure decisions over records and their access logs.

Nothing here touches SQLite or the clock; the store passes records, access histories
(one timestamp per access, from its access log) and ``now``, and applies the result.
Run ``decide`` before ``expire_decisions``: a promoted record gets a new ``layer_since``.

Scoring. ``rule_score`` is a transparent score in [0, 1]:
``0.45·frequency + 0.25·recency + 0.30·importance`` where frequency = 1 − e^(−n/4) for the
``n`` accesses since the record entered its layer, recency = 0.5^(idle / half-life) with
half-life = TTL/4 clamped to [1 h, 7 d] (7 d for Assets), and importance is clamped to
[0, 1]. A pinned record scores 1. ``LearnedScorer`` is an L2-regularised logistic
regression over ``FEATURE_NAMES`` trained on the store's own history (``train``); when
there is one, the combined score is ``rule_weight·rule + (1 − rule_weight)·model``.

Training without leakage (``training_set``). Each record yields snapshots at
``t0 = created_at + k·horizon/2`` (k = 1‥6, the first one in the middle of the Interact
TTL, where Interact decisions are made), kept only when the label window
``(t0, t0 + horizon]`` has fully passed. Features are computed *as of t0* from accesses
at or before t0 only; the label is 1 when the log shows an access inside the window
(whatever layer the record has reached since: promoted records that were used are
positives) or when the record is pinned (the user's own verdict). ``pinned`` is not a
feature: the store does not record when a pin was set, so a snapshot cannot know it.

Decisions (``decide``). Assets never move. A pinned record, or one with importance
≥ 0.9, goes Interact → Insights at once; in Insights it goes on to Assets once it has
spent the minimum time there, whatever its score (pinned records never expire in any
layer, so Assets only adds "proven and permanent"). Any other record moves up exactly
one layer when its score ≥ threshold and it has spent ``MIN_HOURS_IN_LAYER`` there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import ModelError, UsageError
from magray.memory.access import KEEP_FIRST
from magray.memory.lifecycle.expire import DAY, HOUR, Ttls, duration
from magray.memory.records import Layer, Record

FloatArray = npt.NDArray[np.float64]
RECENCY_HALF_LIFE_HOURS = 24.0  # of the ``recency`` feature
MIN_TRAINING_EXAMPLES = 50
MIN_CLASS_EXAMPLES = 10  # of each label
SNAPSHOTS_PER_RECORD = 6
HIGH_IMPORTANCE = 0.9
MIN_HOURS_IN_LAYER: Mapping[Layer, float] = {Layer.INTERACT: 1.0, Layer.INSIGHTS: 72.0}
_W_FREQUENCY, _W_RECENCY, _W_IMPORTANCE = 0.45, 0.25, 0.30

FEATURE_NAMES: tuple[str, ...] = (
    "log_age_hours",  # log1p(hours since the record was created)
    "log_layer_hours",  # log1p(hours in its current layer; since creation if it entered later)
    "log_accesses",  # log1p(accesses so far)
    "accesses_per_day",  # accesses / (days since creation + 1): add-one-day smoothing
    "log_accesses_24h",  # log1p(accesses in the last 24 h)
    "recency",  # 0.5 ** (hours since the last access / 24); 0 when never accessed
    "log_distinct_days",  # log1p(distinct UTC days with an access)
    "importance",  # clamped to [0, 1]
)
_RULES_ONLY = (
    f"rules only: no learned model yet (needs ≥ {MIN_TRAINING_EXAMPLES} examples "
    f"with ≥ {MIN_CLASS_EXAMPLES} of each outcome)"
)


@dataclass(frozen=True, slots=True)
class RecordHistory:
    """A record and the times (unix seconds, ascending) of its accesses as the store keeps
    them: every one, or for a much-used record its first ``KEEP_FIRST`` and last
    ``KEEP_LAST`` with ``skipped`` more in between (``magray.memory.access``)."""

    record: Record
    access_times: tuple[float, ...] = ()
    skipped: int = 0

    def __post_init__(self) -> None:
        times = self.access_times
        if any(b < a for a, b in itertools.pairwise(times)):
            raise UsageError(f"access times of record {self.record.id} must be ascending.")

    def times_until(self, now: float) -> FloatArray:
        """Access times at or before ``now``: all that a decision at ``now`` may see."""
        times = np.asarray(self.access_times, dtype=np.float64)
        return times[: int(np.searchsorted(times, now, side="right"))]

    def _gap(self) -> tuple[float, float] | None:
        """The kept times either side of the skipped ones (None: nothing skipped)."""
        times = self.access_times
        if self.skipped <= 0 or len(times) <= KEEP_FIRST:
            return None
        return times[KEEP_FIRST - 1], times[KEEP_FIRST]

    def skipped_until(self, now: float, since: float = -math.inf) -> int:
        """The skipped accesses counted as at or before ``now`` and after ``since``: all of
        them once ``now`` reaches the first kept time after the gap and ``since`` lies
        before it (they happened in between: exactly when is not kept), else none."""
        gap = self._gap()
        return self.skipped if gap is not None and now >= gap[1] and since <= gap[0] else 0

    def skipped_days(self, now: float) -> int:
        """At most one distinct day per skipped access, among the days strictly inside the
        gap: an estimate for ``log_distinct_days``."""
        gap = self._gap()
        if gap is None or now < gap[1]:
            return 0
        inside = int(math.floor(gap[1] / DAY) - math.floor(gap[0] / DAY)) - 1
        return max(min(self.skipped, inside), 0)


@dataclass(frozen=True, slots=True)
class Decision:
    """What ``promote`` does with one record, and why."""

    record_id: str
    from_layer: Layer
    to_layer: Layer | None  # None: the record stays where it is
    score: float
    rule_score: float
    model_score: float | None  # None when decided by rules only
    reasons: tuple[str, ...]

    @property
    def promoted(self) -> bool:
        return self.to_layer is not None


def _importance(record: Record) -> float:
    return min(max(float(record.importance), 0.0), 1.0)


def features(history: RecordHistory, now: float) -> FloatArray:
    """The feature vector (``FEATURE_NAMES`` order) of a record as it was at ``now``.

    Only accesses at or before ``now`` count, so a past ``now`` gives the past view.
    """
    record = history.record
    times = history.times_until(now)
    n = times.size + history.skipped_until(now)
    age_hours = max(now - record.event_at, 0.0) / HOUR  # since it happened
    since = record.layer_since if record.layer_since <= now else record.created_at
    layer_hours = max(now - since, 0.0) / HOUR
    last_24h = int(np.count_nonzero(times > now - DAY))
    recency = 0.5 ** ((now - times[-1]) / HOUR / RECENCY_HALF_LIFE_HOURS) if n else 0.0
    distinct_days = np.unique(np.floor(times / DAY)).size + history.skipped_days(now)
    return np.array(
        [
            math.log1p(age_hours),
            math.log1p(layer_hours),
            math.log1p(n),
            n / (age_hours / 24 + 1),
            math.log1p(last_24h),
            recency,
            math.log1p(distinct_days),
            _importance(record),
        ],
        dtype=np.float64,
    )


def _half_life_hours(layer: Layer, ttls: Ttls) -> float:
    ttl = ttls.get(layer)
    if ttl is None:
        return 7 * 24.0
    return min(max(ttl / HOUR / 4, 1.0), 7 * 24.0)


def rule_score(history: RecordHistory, now: float, ttls: Ttls) -> tuple[float, list[str]]:
    """The rules' score in [0, 1] of promoting the record at ``now``, with human reasons."""
    record = history.record
    times = history.times_until(now)
    since = min(record.layer_since, now)
    layer_hours = (now - since) / HOUR
    n = int(times.size - np.searchsorted(times, since, side="left"))
    n += history.skipped_until(now, since)
    frequency = 1.0 - math.exp(-n / 4)
    importance = _importance(record)
    reasons: list[str] = ["pinned"] if record.pinned else []
    where = f"in {record.layer.value}"
    if n:
        reasons.append(f"accessed {n}× in {duration(layer_hours)} {where}")
    else:
        reasons.append(f"not accessed in {duration(layer_hours)} {where}")
    recency = 0.0
    if times.size:
        idle_hours = (now - float(times[-1])) / HOUR
        recency = 0.5 ** (idle_hours / _half_life_hours(record.layer, ttls))
        reasons.append(f"idle {duration(idle_hours)}")
    reasons.append(f"importance {importance:.2f}")
    score = _W_FREQUENCY * frequency + _W_RECENCY * recency + _W_IMPORTANCE * importance
    return (1.0 if record.pinned else min(max(score, 0.0), 1.0)), reasons


def _sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


def has_enough_training_data(y: npt.ArrayLike) -> bool:
    """Whether labels ``y`` are enough to train: ``MIN_TRAINING_EXAMPLES``, both classes."""
    labels = np.asarray(y, dtype=np.float64).ravel()
    positives = int(np.count_nonzero(labels == 1.0))
    fewest = min(positives, labels.size - positives)
    return labels.size >= MIN_TRAINING_EXAMPLES and fewest >= MIN_CLASS_EXAMPLES


@dataclass(frozen=True, slots=True)
class LearnedScorer:
    """Logistic regression on standardised features, fitted by Newton's method (IRLS)."""

    feature_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]  # one per feature, per standard deviation
    intercept: float
    l2: float
    n_samples: int
    n_positive: int
    trained_at: float | None = None

    @classmethod
    def fit(
        cls, x: npt.ArrayLike, y: npt.ArrayLike, *, l2: float = 1.0, trained_at: float | None = None
    ) -> LearnedScorer:
        """Fit on rows ``x`` (``FEATURE_NAMES`` order) and 0/1 labels ``y``; deterministic.

        Raises:
            UsageError: shapes disagree, labels are not 0/1, or there are too few examples.
        """
        xs = np.asarray(x, dtype=np.float64)
        ys = np.asarray(y, dtype=np.float64).ravel()
        if xs.ndim != 2 or xs.shape[1] != len(FEATURE_NAMES) or xs.shape[0] != ys.size:
            raise UsageError(f"training data must be n × {len(FEATURE_NAMES)} with n labels.")
        if not np.all((ys == 0.0) | (ys == 1.0)) or not np.all(np.isfinite(xs)):
            raise UsageError("training labels must be 0 or 1 and features finite.")
        if not has_enough_training_data(ys):
            raise UsageError(_RULES_ONLY.removeprefix("rules only: ") + ".")
        mean = xs.mean(axis=0)
        scale = xs.std(axis=0)
        scale[scale < 1e-12] = 1.0
        design = np.hstack([np.ones((ys.size, 1)), (xs - mean) / scale])
        penalty = np.eye(design.shape[1]) * l2
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        w = np.zeros(design.shape[1])
        for _ in range(100):
            p = _sigmoid(design @ w)
            gradient = design.T @ (p - ys) + penalty @ w
            hessian = (design.T * (p * (1 - p))) @ design + penalty + 1e-9 * np.eye(w.size)
            step = np.linalg.solve(hessian, gradient)
            w = w - step
            if float(np.max(np.abs(step))) < 1e-10:
                break
        return cls(
            feature_names=FEATURE_NAMES,
            mean=tuple(float(v) for v in mean),
            scale=tuple(float(v) for v in scale),
            weights=tuple(float(v) for v in w[1:]),
            intercept=float(w[0]),
            l2=float(l2),
            n_samples=int(ys.size),
            n_positive=int(ys.sum()),
            trained_at=trained_at,
        )

    def predict(self, x: npt.ArrayLike) -> FloatArray:
        """Probabilities of re-use for rows ``x`` (one row or a matrix)."""
        xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
        z = (xs - np.asarray(self.mean)) / np.asarray(self.scale)
        return _sigmoid(self.intercept + z @ np.asarray(self.weights))

    @property
    def coefficients(self) -> dict[str, float]:
        """Each feature's weight per standard deviation (log-odds), by name."""
        return dict(zip(self.feature_names, self.weights, strict=True))

    def explain(self, row: FloatArray, top: int = 3) -> str:
        """The features that moved one prediction most, e.g. ``importance +1.20``."""
        z = (row - np.asarray(self.mean)) / np.asarray(self.scale)
        parts = z * np.asarray(self.weights)
        order = sorted(range(parts.size), key=lambda i: (-abs(float(parts[i])), i))[:top]
        return ", ".join(f"{self.feature_names[i]} {float(parts[i]):+.2f}" for i in order)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form for the store's meta table."""
        return {
            "version": 1,
            "feature_names": list(self.feature_names),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "weights": list(self.weights),
            "intercept": self.intercept,
            "l2": self.l2,
            "n_samples": self.n_samples,
            "n_positive": self.n_positive,
            "trained_at": self.trained_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LearnedScorer:
        """Rebuild from ``to_dict``; ModelError when stale or damaged (retrain then)."""
        try:
            names = tuple(str(n) for n in data["feature_names"])
            if data["version"] != 1 or names != FEATURE_NAMES:
                raise ValueError
            vectors = [tuple(float(v) for v in data[k]) for k in ("mean", "scale", "weights")]
            if any(len(v) != len(names) for v in vectors):
                raise ValueError
            trained_at = data.get("trained_at")
            return cls(
                feature_names=names,
                mean=vectors[0],
                scale=vectors[1],
                weights=vectors[2],
                intercept=float(data["intercept"]),
                l2=float(data["l2"]),
                n_samples=int(data["n_samples"]),
                n_positive=int(data["n_positive"]),
                trained_at=None if trained_at is None else float(trained_at),
            )
        except (KeyError, TypeError, ValueError):
            raise ModelError(
                "the stored promotion model is outdated or damaged; it will be retrained."
            ) from None


def training_set(
    histories: Iterable[RecordHistory], now: float, *, horizon_hours: float = 24.0
) -> tuple[FloatArray, FloatArray]:
    """Past snapshots ``X`` (features as of t0) and labels ``y`` (re-used after t0).

    See the module docstring for the snapshot times and why nothing after t0 leaks in.
    """
    if horizon_hours <= 0:
        raise UsageError("the training horizon must be positive.")
    horizon = horizon_hours * HOUR
    rows: list[FloatArray] = []
    labels: list[float] = []
    for history in histories:
        times = np.asarray(history.access_times, dtype=np.float64)
        for k in range(1, SNAPSHOTS_PER_RECORD + 1):
            t0 = history.record.created_at + k * horizon / 2
            if t0 + horizon > now:
                break
            reused = bool(np.any((times > t0) & (times <= t0 + horizon)))
            rows.append(features(history, t0))
            labels.append(1.0 if reused or history.record.pinned else 0.0)
    if not rows:
        return np.zeros((0, len(FEATURE_NAMES))), np.zeros(0)
    return np.vstack(rows), np.asarray(labels, dtype=np.float64)


def train(
    histories: Iterable[RecordHistory],
    now: float,
    *,
    horizon_hours: float = 24.0,
    l2: float = 1.0,
) -> LearnedScorer | None:
    """A scorer learned from the store's history, or None when the data is too thin."""
    x, y = training_set(histories, now, horizon_hours=horizon_hours)
    if not has_enough_training_data(y):
        return None
    return LearnedScorer.fit(x, y, l2=l2, trained_at=now)


def decide(
    histories: Sequence[RecordHistory],
    now: float,
    *,
    ttls: Ttls,
    scorer: LearnedScorer | None = None,
    threshold: float = 0.6,
    rule_weight: float = 0.5,
) -> list[Decision]:
    """One ``Decision`` per history, in input order (see the module docstring for rules)."""
    if not 0.0 <= threshold <= 1.0 or not 0.0 <= rule_weight <= 1.0:
        raise UsageError("the promotion threshold and rule weight must lie in [0, 1].")
    model_scores: FloatArray | None = None
    rows: FloatArray | None = None
    if scorer is not None and histories:
        rows = np.vstack([features(h, now) for h in histories])
        model_scores = scorer.predict(rows)
    decisions: list[Decision] = []
    for i, history in enumerate(histories):
        record = history.record
        rule, reasons = rule_score(history, now, ttls)
        model: float | None = None
        if model_scores is not None and scorer is not None and rows is not None:
            model = float(model_scores[i])
            score = rule_weight * rule + (1 - rule_weight) * model
            reasons.append(f"model {model:.2f} ({scorer.explain(rows[i])})")
        else:
            score = rule
            reasons.append(_RULES_ONLY)
        score = min(max(score, 0.0), 1.0)
        target = record.layer.next
        layer_hours = max(now - record.layer_since, 0.0) / HOUR
        minimum = MIN_HOURS_IN_LAYER.get(record.layer, 0.0)
        forced = record.pinned or _importance(record) >= HIGH_IMPORTANCE
        why = "pinned" if record.pinned else f"importance ≥ {HIGH_IMPORTANCE}"
        if target is None:
            reasons.append(f"{record.layer.value} is the top layer: never promoted")
        elif forced and record.layer is Layer.INTERACT:
            reasons.append(f"{why}: promoted to {target.value} at once")
        elif layer_hours < minimum:
            reasons.append(
                f"in {record.layer.value} for {duration(layer_hours)}, "
                f"under the {duration(minimum)} minimum"
            )
            target = None
        elif forced:
            reasons.append(f"{why}: promoted to {target.value} after the minimum time")
        elif score >= threshold:
            reasons.append(f"score {score:.2f} ≥ threshold {threshold:.2f}")
        else:
            reasons.append(f"score {score:.2f} < threshold {threshold:.2f}")
            target = None
        decisions.append(
            Decision(record.id, record.layer, target, score, rule, model, tuple(reasons))
        )
    return decisions
