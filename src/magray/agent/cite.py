"""Citations checked against the evidence: an answer cites the memory that states its facts.

A small model often copies a value from one memory and cites the number of the memory next
to it. The words of the answer that the question did not bring (the value, the command, the
name) are looked for in each numbered memory; when a memory holds more of them than every
memory the answer cites, the citations are replaced by that memory's number, and an answer
that cites nothing gets it appended. "I don't know" is left alone.

``CheckedStream`` does the same while the answer streams, so what is shown is what is
stored: text streams until a citation marker, which is held with the rest of its sentence
until the sentence ends and the citation is checked against the answer so far; an answer
that cites nothing holds back only its closing punctuation, where a marker may be added.
With ``ground`` it also holds the answer's first sentence that adds a word to the question
until that sentence ends, and shows "I don't know." instead of the answer when the memories
do not hold what it adds (``grounded``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from magray.agent.evidence import JOIN, Unit, score_units, terms

_CITATION = re.compile(r"\s*\[(\d{1,2})\]")
_WHOLE = re.compile(r"^(\d+)\.0+$")
_MARKER = re.compile(r"\[\d{1,2}\]")
#: the end of a marker's sentence: closing punctuation and a space, or a line break
_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
#: what may still become a marker (or the space before one) at the end of streamed text
_OPEN_TAIL = re.compile(r"\s*(?:\[\d{0,2})?$")
_UNKNOWN = re.compile(r"\b(?:don't|do not) know\b", re.IGNORECASE)
#: words an answer adds around a fact that say nothing about where it came from
_FILLER = frozenset(terms("according to memory memories say says state states answer default"))


_NUMBER_WORDS = {
    w: str(n)
    for n, w in enumerate("zero one two three four five six seven eight nine".split())  # noqa: SIM905
}
_NUMBER_WORDS |= {"ten": "10", "twelve": "12", "twenty": "20", "thirty": "30", "sixty": "60"}
#: a unit written short and written out read alike ("6 h" is "six hours")
_UNITS = {
    short: terms(word)[0]
    for word, shorts in (
        ("hour", ("h", "hr", "hrs")),
        ("second", ("s", "sec", "secs")),
        ("minute", ("min", "mins")),
        ("day", ("d",)),
        ("millisecond", ("ms",)),
    )
    for short in shorts
}
_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)([a-z]+)$")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def _bag(text: str) -> set[str]:
    """The content words of ``text``, a number read as its value whether written ``10.0``,
    ``20,000`` or in words (``six``), and a unit whether short or written out (``6h``,
    ``6 h``, ``six hours``)."""
    out: set[str] = set()
    for term in terms(_THOUSANDS.sub("", text)):
        term = _WHOLE.sub(r"\1", term)
        glued = _NUMBER_UNIT.match(term)
        if glued and glued.group(2) in _UNITS:
            out.update((glued.group(1), _UNITS[glued.group(2)]))
            continue
        alone = _UNITS.get(term) if len(term) > 1 else None  # "s" is mostly "MAGRAY's"
        out.add(_NUMBER_WORDS.get(term) or alone or term)
    return out


def new_terms(answer: str, question: str) -> set[str]:
    """The content words of ``answer`` that ``question`` does not contain."""
    return _bag(_CITATION.sub(" ", answer)) - _bag(question) - _FILLER


def says_unknown(answer: str) -> bool:
    """Whether ``answer`` says "I don't know"."""
    return _UNKNOWN.search(answer) is not None


#: what a small model's answer becomes when the memories do not hold what it says
UNKNOWN_ANSWER = "I don't know."
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_CODE = re.compile(r"`([^`\n]+)`")


def grounded(answer: str, question: str, texts: Sequence[str]) -> bool:
    """Whether the memories (``texts``) hold what ``answer`` adds to ``question``: a name
    it quotes in backticks, or else one of the words it adds and, when it adds numbers,
    one of them (a value made up is mostly a number). "I don't know" and an answer that
    adds nothing (it restates the question) pass; an answer that says "I don't know" and
    more is judged on the rest."""
    rest = _UNKNOWN.sub(" ", answer)  # "I don't know" adds nothing
    wanted = new_terms(rest, question)
    if not wanted:
        return True
    flat = " ".join(" ".join(texts).lower().split())
    if any(" ".join(code.lower().split()) in flat for code in _CODE.findall(rest)):
        return True  # a command or name copied from a memory (its words may be the question's)
    held = set().union(*(_bag(t) for t in texts)) if texts else set()
    numbers = {t for t in wanted if _NUMBER.fullmatch(t)}
    return bool(wanted & held) and (not numbers or bool(numbers & held))


#: the unit of evidence an answer's value comes from must match the question at least this
#: share as well as the best unit does (``off_focus``)
FOCUS_SHARE = 0.5


def first_sentence(answer: str, question: str) -> str:
    """``answer`` up to the end of its first sentence that adds a word to ``question``."""
    for match in _SENTENCE_END.finditer(answer):
        if new_terms(_UNKNOWN.sub(" ", answer[: match.end()]), question):
            return answer[: match.end()]
    return answer


def unit_scores(question: str, texts: Sequence[str]) -> list[list[float]]:
    """How well each unit of each focused memory (``texts``, units joined by "…") matches
    ``question``: term overlap weighted by rarity and the kind of value asked for, as
    ``evidence.score_units`` scores them without an embedder."""
    units = [Unit(i, j, u) for i, t in enumerate(texts) for j, u in enumerate(t.split(JOIN))]
    flat = score_units(question, units)
    out: list[list[float]] = [[] for _ in texts]
    for unit, score in zip(units, flat, strict=True):
        out[unit.memory].append(score)
    return out


def off_focus(answer: str, question: str, texts: Sequence[str]) -> bool:
    """Whether the value ``answer``'s first sentence adds to ``question`` comes only from
    units of the evidence that match the question much worse (under ``FOCUS_SHARE``) than
    the best unit does: a value read off the neighbouring sentence or table row. The value
    is the numbers and the names quoted in backticks the sentence adds (else all the words
    it adds); False when no unit holds it (``grounded`` judges that)."""
    head = _UNKNOWN.sub(" ", first_sentence(answer, question))
    wanted = new_terms(head, question)
    quoted = _bag(" ".join(_CODE.findall(head))) & wanted
    value = {t for t in wanted if _NUMBER.fullmatch(t)} | quoted or wanted
    if not value or not texts:
        return False
    scores = [s for row in unit_scores(question, texts) for s in row]
    units = [u for t in texts for u in t.split(JOIN)]
    sources = [s for s, u in zip(scores, units, strict=True) if value & _bag(u)]
    if not sources or max(scores) <= 0:
        return False
    return max(sources) < FOCUS_SHARE * max(scores)


def in_focus(question: str, texts: Sequence[str]) -> list[str]:
    """Each text cut down to its units that match ``question`` at least ``FOCUS_SHARE`` as
    well as the best unit does ("" for a text without one)."""
    scores = unit_scores(question, texts)
    best = max((s for row in scores for s in row), default=0.0)
    return [
        JOIN.join(u for u, s in zip(t.split(JOIN), row, strict=True) if s >= FOCUS_SHARE * best)
        for t, row in zip(texts, scores, strict=True)
    ]


def holds_new_terms(answer: str, question: str, texts: Sequence[str]) -> bool:
    """Whether some text holds a word that ``answer`` adds to ``question`` (its value)."""
    wanted = new_terms(answer, question)
    return any(wanted & _bag(t) for t in texts)


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


def _open_tail(text: str) -> int:
    """Where the part of ``text`` that may still become a marker (or its space) starts."""
    match = _OPEN_TAIL.search(text)
    return match.start() if match else len(text)


def citation_note(before: str, after: str) -> str | None:
    """The note saying how checking changed an answer's citations (None: it did not)."""
    if before == after:
        return None
    was = ", ".join(f"[{n}]" for n in dict.fromkeys(_CITATION.findall(before)))
    now = ", ".join(f"[{n}]" for n in dict.fromkeys(_CITATION.findall(after)))
    if was:
        return f"citation {was} → {now}: that memory holds the answer"
    return f"citation {now} added: that memory holds the answer"


class CheckedStream:
    """An answer streamed as it is generated, exactly as it will be stored.

    ``feed`` takes the model's text and passes on (to ``emit``) what is final; ``close``
    passes on the rest and returns the whole answer, which is the concatenation of all that
    was passed on. Leading whitespace is dropped and trailing whitespace held until more
    text follows, so the answer is also stripped. With ``texts`` (memory ``[n]`` is
    ``texts[n - 1]``) citations are checked like ``fix_citations`` does, on the answer up
    to the end of the sentence of its first marker; a citation replaced there removes the
    markers that follow, as ``fix_citations`` does. With ``ground``, nothing is passed on
    until the first sentence that adds a word to the question has ended (or the answer);
    an answer ``grounded`` rejects is passed on as ``UNKNOWN_ANSWER`` alone, the model's
    text kept in ``replaced``.
    """

    def __init__(
        self,
        question: str,
        texts: Sequence[str] | None,
        emit: Callable[[str], None] | None = None,
        *,
        ground: bool = False,
        focused: bool = False,
    ) -> None:
        self.question = question
        self.texts = list(texts) if texts else None
        self._emit = emit
        self.shown = ""
        self._pending = ""
        #: None: not decided yet; "keep": the model's citations stand; "strip": replaced
        self._decided: str | None = None if self.texts else "keep"
        #: with ``ground``: the answer's first sentence, held until it is judged grounded
        self._head: str | None = "" if ground and self.texts else None
        #: the model's answer when it was replaced by "I don't know" (the rest is dropped)
        self.replaced: str | None = None
        #: with ``focused``: a grounded answer whose value comes from a unit of evidence
        #: that matches the question much worse than the best one (``off_focus``), held
        #: back unshown for the caller to ask again or to ``release``
        self._focused = focused
        self.deferred: str | None = None

    def feed(self, text: str) -> None:
        if self.replaced is not None:
            self.replaced += text
            return
        if self.deferred is not None:
            self.deferred += text
            return
        if self._head is not None:
            self._head += text
            self._judge(final=False)
            return
        if not self.shown:
            text = text.lstrip() if not self._pending else text
        self._pending += text
        self._advance(final=False)

    def close(self) -> str:
        """Pass on what is held and return the whole answer."""
        if self._head is not None:
            self._judge(final=True)
        if self.replaced is not None or self.deferred is not None:
            return self.shown
        self._pending = self._pending.rstrip()
        self._advance(final=True)
        return self.shown

    def _judge(self, *, final: bool) -> None:
        """Once the answer's first sentence that adds a word to the question has ended (or
        the answer has), pass the answer on when the memories hold it, else replace it by
        "I don't know"."""
        assert self._head is not None and self.texts is not None
        head = self._head.lstrip()
        if not final:
            ends = [m.end() for m in _SENTENCE_END.finditer(head)]
            if not any(new_terms(head[:end], self.question) for end in ends):
                return
            head = head[: next(e for e in ends if new_terms(head[:e], self.question))]
        text, self._head = self._head, None
        if grounded(head, self.question, self.texts):
            if self._focused and off_focus(head, self.question, self.texts):
                self.deferred = text
                return
            self.feed(text)
        else:
            self.replaced = text
            self._show(UNKNOWN_ANSWER)

    def release(self) -> str:
        """Pass on the answer held back as off focus, as if it had not been, and return
        the whole answer."""
        text, self.deferred, self._focused = self.deferred or "", None, False
        self.feed(text)
        return self.close()

    def _show(self, text: str) -> None:
        if text:
            self.shown += text
            if self._emit is not None:
                self._emit(text)

    def _advance(self, *, final: bool) -> None:
        if self._decided is None:
            self._check(final=final)
        if self._decided is None:
            return
        text = self._pending
        if self._decided == "strip":
            text = _CITATION.sub("", text)
            self._pending = text
        cut = len(text) if final else _open_tail(text)
        if self._decided == "keep" and not final:
            cut = len(text.rstrip())
        self._show(text[:cut])
        self._pending = text[cut:]

    def _check(self, *, final: bool) -> None:
        """Decide the citation once the first marker's sentence has ended (or the answer)."""
        marker = _MARKER.search(self._pending)
        if marker is None:
            if final:
                self._settle(self.shown + self._pending)
                return
            # no marker yet: all but the closing punctuation (where one may be added)
            cut = _open_tail(self._pending)
            body = self._pending[:cut]
            body_end = len(body.rstrip(".!?"))
            self._show(self._pending[:body_end])
            self._pending = self._pending[body_end:]
            return
        end = _SENTENCE_END.search(self._pending, marker.end())
        if end is None and not final:
            # show what comes before the marker (and the space before it), hold the rest
            before = len(self._pending[: marker.start()].rstrip())
            self._show(self._pending[:before])
            self._pending = self._pending[before:]
            return
        upto = len(self._pending) if end is None else end.end()
        self._settle(self.shown + self._pending[:upto], rest=self._pending[upto:])

    def _settle(self, answer: str, rest: str = "") -> None:
        """Show ``answer``'s checked tail and decide how the markers that follow are kept."""
        assert self.texts is not None
        fixed = fix_citations(answer, self.question, self.texts)
        if not fixed.startswith(self.shown):  # never unsay what was shown
            fixed = answer
        recited = fixed != answer and bool(_CITATION.search(answer))
        self._decided = "strip" if recited else "keep"
        self._show(fixed[len(self.shown) :])
        self._pending = rest
