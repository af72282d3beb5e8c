"""Ranking-quality metrics, as BEIR reports them (pytrec_eval / trec_eval definitions).

nDCG@k uses the *linear* gain of trec_eval's ``ndcg_cut`` (the one BEIR's published numbers
come from): DCG@k = Σᵢ relᵢ / log₂(i + 1) over ranks i = 1..k, divided by the DCG of the ideal
ordering of the judged documents. The exponential gain 2^rel − 1 of Burges et al. is
available with ``exponential=True``; for binary judgments (SciFact) the two are identical.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def dcg(grades: Sequence[int], *, exponential: bool = False) -> float:
    """Discounted cumulative gain of ``grades`` listed in rank order."""
    total = 0.0
    for i, grade in enumerate(grades, 1):
        if grade <= 0:
            continue
        gain = (2.0**grade - 1.0) if exponential else float(grade)
        total += gain / math.log2(i + 1)
    return total


def ndcg_at_k(
    ranked: Sequence[str],
    judged: Mapping[str, int],
    k: int = 10,
    *,
    exponential: bool = False,
) -> float:
    """nDCG@k of the ranked document ids against graded judgments (0 when none is positive)."""
    ideal = dcg(
        sorted((g for g in judged.values() if g > 0), reverse=True)[:k], exponential=exponential
    )
    if ideal == 0.0:
        return 0.0
    seen: set[str] = set()
    grades: list[int] = []
    for doc_id in ranked:
        if doc_id in seen:
            continue  # a document counts once, at its best rank
        seen.add(doc_id)
        grades.append(judged.get(doc_id, 0))
        if len(grades) == k:
            break
    return dcg(grades, exponential=exponential) / ideal


def recall_at_k(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant (grade > 0) documents found in the first ``k`` distinct ids."""
    relevant = {doc_id for doc_id, grade in judged.items() if grade > 0}
    if not relevant:
        return 0.0
    top = list(dict.fromkeys(ranked))[:k]
    return len(relevant.intersection(top)) / len(relevant)


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
