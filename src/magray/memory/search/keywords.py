"""Keyword queries: the words of a query a keyword index is asked for.

Documents keep every word (the index's BM25 weighting does the rest); queries drop common
English stopwords. ``Backend.keyword_search`` receives these terms and ORs them together.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Query-side stopwords only: documents keep every word, BM25's IDF does the rest.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "how",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "not",
        "no",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "them",
        "their",
        "our",
        "your",
        "my",
        "me",
    ]
)
MAX_QUERY_TERMS = 64
# Candidates per list that score normalisation spans; recall fetches at least this many
# (per layer for vectors) so that ranks never depend on the k asked for. 200 is the pool the
# convex fusion was tuned with (k = 100 on SciFact); a shallower anchor (100) cost 0.0013
# nDCG@10 there and 0.5 points of R@5 on LoCoMo (docs/benchmarks.md).
NORM_DEPTH = 200


def keyword_terms(text: str) -> list[str]:
    """The words a keyword search looks for: distinct, lower-case, without stopwords (unless
    the query holds nothing else), at most ``MAX_QUERY_TERMS``."""
    words = [w.lower() for w in _TOKEN.findall(text)]
    content = [w for w in words if w not in _STOPWORDS] or words
    return list(dict.fromkeys(content))[:MAX_QUERY_TERMS]
