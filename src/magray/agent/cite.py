"""Citations checked against the evidence: an answer cites the memory that states its facts.

A small model often copies a value from one memory and cites the number of the memory next
to it. The words of the answer that the question did not bring (the value, the command, the
name) are looked for in each numbered memory; when a memory holds more of them than every
memory the answer cites, the citations are replaced by that memory's number, and an answer
that cites nothing gets it appended. "I don't know" is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from magray.agent.evidence import terms

_CITATION = re.compile(r"\s*\[(\d{1,2})\]")
_WHOLE = re.compile(r"^(\d+)\.0+$")
_UNKNOWN = re.compile(r"\b(?:don't|do not) know\b", re.IGNORECASE)
#: words an answer adds around a fact that say nothing about where it came from
_FILLER = frozenset(terms("according to memory memories say says state states answer default"))


def _bag(text: str) -> set[str]:
    """The content words of ``text``, a number written as ``10.0`` read as ``10``."""
    return {_WHOLE.sub(r"\1", t) for t in terms(text)}


def new_terms(answer: str, question: str) -> set[str]:
    """The content words of ``answer`` that ``question`` does not contain."""
    return _bag(_CITATION.sub(" ", answer)) - _bag(question) - _FILLER


def best_source(answer: str, question: str, texts: Sequence[str]) -> int | None:
    """The index of the text holding most of the answer's own words (None: none holds any,
    or two hold the same number)."""
    wanted = new_terms(answer, question)
    if not wanted:
        return None
    held = [len(wanted & _bag(t)) for t in texts]
    best = max(held, default=0)
    if best == 0 or held.count(best) > 1:
        return None
    return held.index(best)


def fix_citations(answer: str, question: str, texts: Sequence[str]) -> str:
    """``answer`` citing the memory (``texts[n - 1]`` is memory ``[n]``) that states it."""
    if not answer.strip() or _UNKNOWN.search(answer):
        return answer
    best = best_source(answer, question, texts)
    if best is None:
        return answer
    wanted = new_terms(answer, question)
    cited = {int(n) for n in _CITATION.findall(answer) if 1 <= int(n) <= len(texts)}
    best_held = len(wanted & _bag(texts[best]))
    if any(len(wanted & _bag(texts[n - 1])) >= best_held for n in cited):
        return answer  # a cited memory holds as much of it: the model's citation stands
    marker = f"[{best + 1}]"
    if cited:
        return _recite(answer, marker)
    stripped = answer.rstrip()
    if stripped.endswith((".", "!", "?")):
        return f"{stripped[:-1]} {marker}{stripped[-1]}"
    return f"{stripped} {marker}"


def _recite(answer: str, marker: str) -> str:
    """``answer`` with its first citation replaced by ``marker`` and the others removed."""
    seen = False

    def swap(match: re.Match[str]) -> str:
        nonlocal seen
        if seen:
            return ""
        seen = True
        return match.group(0)[: match.start(1) - match.start(0) - 1] + marker

    return _CITATION.sub(swap, answer)
