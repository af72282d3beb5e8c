"""Context of a hit: its neighbouring records and its session (conversations, mostly).

A turn of a conversation rarely answers a question on its own: the answer is often the
turn after the question it matches, and a session that holds several good matches is the
one being asked about. After fusion, a record's score gains

    score + context_weight · best score of its neighbours (label ± 1, same session)
          + session_weight · mean of the three best scores of its session

where "score" is the fused score (with layer weight and recency), plus ``time_weight`` for a
turn that mentions a time when the query asks when (``rank.temporal``), and records
outside the candidate pool count 0. Records without a session (notes, ingested documents) gain
nothing, so their order is unchanged. Neighbours of the candidates become candidates
themselves, so a turn that the query misses can be lifted by the turn before it.

The weights were fitted on LoCoMo's development conversations with leave-one-conversation-
out cross-validation (docs/benchmarks.md); the pool is the same for every k, so ranks stay
independent of k.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from magray.memory.backends.values import Candidate
from magray.memory.records import Explanation

SESSION_TOP = 3  # a session's score is the mean of its best three records


@dataclass(frozen=True, slots=True)
class ContextParams:
    context_weight: float = 0.0
    session_weight: float = 0.0
    time_weight: float = 0.0

    @property
    def active(self) -> bool:
        return self.context_weight > 0 or self.session_weight > 0 or self.time_weight > 0


def neighbours(nums: Iterable[int]) -> set[int]:
    """The labels next to ``nums`` (label ± 1) that are not among them."""
    have = set(nums)
    return {n for num in have for n in (num - 1, num + 1) if n > 0} - have


def with_context(
    fused: list[tuple[int, float, Explanation]],
    candidates: Mapping[int, Candidate],
    params: ContextParams,
    explain: int,
    timed: Collection[int] = (),
) -> list[tuple[int, float, Explanation]]:
    """``fused`` re-scored with neighbour and session context, best first (ties by label).

    ``timed`` holds the labels that mention a time when the query asks when: those in a
    session with a fused score above 0 gain ``time_weight`` first. The explanations of the
    best ``explain`` entries carry the new score and the context's part of it (time bonus
    included); the others keep their fused explanation (they are only read when hits go
    missing between the index and the store).
    """
    base = {num: score for num, score, _ in fused}
    explained = {num: expl for num, _, expl in fused}
    sessions = {num: cand.session for num, cand in candidates.items()}
    bonus: dict[int, float] = {}
    if params.time_weight > 0:
        for num in timed:
            if base.get(num, 0.0) > 0 and sessions.get(num) is not None:
                bonus[num] = params.time_weight
                base[num] += params.time_weight
    best: dict[str, list[float]] = {}
    for num, score in base.items():
        if (session := sessions.get(num)) is not None:
            best.setdefault(session, []).append(score)
    session_score = {
        s: sum(heapq.nlargest(SESSION_TOP, scores)) / SESSION_TOP for s, scores in best.items()
    }
    cw, sw = params.context_weight, params.session_weight
    scored: list[tuple[float, int, float]] = []  # (−score, label, context gain)
    for num, session in sessions.items():
        own = base.get(num)
        if session is None:
            if own is not None:
                scored.append((-own, num, 0.0))
            continue
        near = 0.0
        if sessions.get(num - 1) == session:
            near = base.get(num - 1, 0.0)
        if sessions.get(num + 1) == session:
            near = max(near, base.get(num + 1, 0.0))
        gain = cw * near + sw * session_score.get(session, 0.0)
        if own is None and gain <= 0:
            continue
        scored.append((-((own or 0.0) + gain), num, gain + bonus.get(num, 0.0)))
    scored.sort()
    out: list[tuple[int, float, Explanation]] = []
    for i, (neg, num, gain) in enumerate(scored):
        expl = explained.get(num) or Explanation()
        if i < explain:
            expl = replace(expl, fused_score=-neg, context_score=gain)
        out.append((num, -neg, expl))
    return out
