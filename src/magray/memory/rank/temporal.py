"""Time-aware ranking: a question that asks *when* favours turns that mention a time.

In a conversation the answer to "When did Ana adopt the cat?" is the turn that says "we
adopted her last week": the date is relative to when the turn was said, and the words that
carry it (yesterday, last, week, May, …) are not in the question. So when a query asks
when (it starts with "when", "how long", "what year/month/date/day/time"), turns of a
conversation whose text holds one of ``TIME_TERMS`` get ``search.time_weight`` added to
their fused score before neighbour and session context are added (``rank.context``).

Which candidates mention a time is asked of the keyword index (the same stemming as
documents), so recall reads no text. The index returns the best ``TIME_MATCH_LIMIT``
mentions by BM25; in a larger store, a candidate beyond them simply gains nothing. Ranking
every record that holds a time word makes the lookup grow with the store (about 1–3 ms at
700 turns, 17 ms at 5,000 long documents); only stores with a conversation pay it. The
weight was fitted on LoCoMo's development conversations with leave-one-conversation-out
cross-validation (docs/benchmarks.md).
"""

from __future__ import annotations

import re
from collections.abc import Collection

from magray.memory.backends.base import Backend
from magray.memory.records import Filters

TIME_TERMS: tuple[str, ...] = (
    "yesterday",
    "today",
    "tonight",
    "tomorrow",
    "last",
    "next",
    "ago",
    "week",
    "weekend",
    "month",
    "year",
    "morning",
    "evening",
    "night",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "recently",
    "soon",
    "since",
    "just",
)
TIME_MATCH_LIMIT = 5000
_WHEN = re.compile(r"^\W*(when|how long|what (year|month|date|day|time))\b", re.IGNORECASE)


def asks_when(query: str) -> bool:
    """Whether ``query`` asks for a time ("When did …", "How long ago …", "What year …")."""
    return _WHEN.match(query) is not None


def time_mentions(
    backend: Backend, query: str, nums: Collection[int], filters: Filters, weight: float
) -> frozenset[int]:
    """The labels among ``nums`` whose text mentions a time, if ``query`` asks when and the
    time weight is on (else none): one keyword-index lookup, no text read."""
    if weight <= 0 or not nums or not asks_when(query):
        return frozenset()
    hits = backend.keyword_search(list(TIME_TERMS), filters, TIME_MATCH_LIMIT)
    wanted = set(nums)
    return frozenset(hit.num for hit in hits if hit.num in wanted)
