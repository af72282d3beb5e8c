"""Focused evidence for small models: the sentences of the recalled memories that match.

A 0.5B model given three 700-character chunks often answers with a neighbouring fact. This
module splits each recalled memory into short units (sentences of prose, list items, table
rows with their header, lines of code), scores every unit against the question (term overlap
weighted by rarity, plus the embedder's cosine similarity when one is given, plus a bonus
when the unit holds a value of the kind the question asks for: a number for "how many",
a command for "which command"), and keeps the best units within a token budget, each
text once (overlapping chunks repeat sentences). Each kept unit stays under its memory, so a
citation ``[n]`` still names the memory it came from; memories are ordered by their best unit, and
a memory's units best first (a small model tends to take the first fact it reads).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal, Protocol, overload

from magray.llm.base import Message

if TYPE_CHECKING:
    from magray.agent.session import UsedMemory

SEMANTIC_WEIGHT = 1.0  # the cosine similarity's share of a unit's score
LEXICAL_WEIGHT = 1.0  # the term overlap's share (normalised to 0..1)
CONTEXT_SHARE = 0.5  # a question term found only in a unit's heading or lead-in counts half
KIND_WEIGHT = 0.2  # bonus of a unit holding a value of the kind the question asks for
MAX_UNIT_CHARS = 1000  # longer units (a run-on paragraph) are cut at a word
WINDOW_CHARS = 240  # a longer unit is shown as its clauses that best match the question
#: a sentence is scored with the one before it in its paragraph (at ``CONTEXT_SHARE``), a
#: line of code with what introduces its block
PRIOR_CONTEXT = True
CODE_CONTEXT = True
JOIN = " … "

_STOP = frozenset(  # words that say nothing about where an answer is
    """a an and are as at be by can do does for from has have how i if in into is it its of on or
    that the their them then there these this to was what when where which who why will with you
    your my me we our one may much many long""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[A-Z`*\[(\"'])")
#: a colon after fewer words than this is a label ("- `Dockerfile`: CPU, …"), not the end
#: of a sentence: the label stays with what it names
LABEL_WORDS = 4
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}")


#: what kind of value a question asks for, and how a unit holding one looks
_NUMBER_NOUNS = (
    "port|code|number|count|size|timeout|threshold|limit|ttl|dimensions?|version|priority"
    "|seconds|minutes|hours|days|tokens|bytes|percent|rate"
)
_KINDS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (  # a number: "how many", "how long", "which port", "… in seconds"
        re.compile(
            r"\bhow (?:many|long|often|much|large|big)\b"
            rf"|\b(?:which|what) (?:\w+ )?(?:{_NUMBER_NOUNS})\b"
            rf"|\bin (?:seconds|minutes|hours|days|bytes)\b|\bup to how\b",
            re.IGNORECASE,
        ),
        re.compile(r"(?<![\w.\-])\d+(?:[.,]\d+)*(?![\w\-])"),
    ),
    (  # a command or a flag
        re.compile(r"\b(?:which|what) (?:\w+ )?(?:command|subcommand|flag|option|target)\b", re.I),
        re.compile(r"`(?:magray|make)\s[^`]+`|(?<![\w-])--?[a-z][\w-]*|^\$ |^(?:magray|make)\s"),
    ),
    (  # an environment variable
        re.compile(r"\benvironment variable\b", re.IGNORECASE),
        re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"),
    ),
    (  # a file
        re.compile(r"\b(?:which|what) (?:\w+ )?file\b", re.IGNORECASE),
        re.compile(r"\b[\w\-]+\.(?:db|toml|md|py|json|jsonl|ya?ml|txt|log|sqlite|onnx|gguf)\b"),
    ),
)


def asked_kinds(question: str) -> list[re.Pattern[str]]:
    """How a unit holding a value of the kind ``question`` asks for looks (none: any)."""
    return [value for asks, value in _KINDS if asks.search(question)]


class Embedder(Protocol):
    def embed_queries(self, texts: Sequence[str]) -> object: ...

    def embed_documents(self, texts: Sequence[str]) -> object: ...


@dataclass(frozen=True, slots=True)
class Unit:
    memory: int  # index of the memory it came from
    order: int  # position within that memory
    text: str
    #: the heading it sits under, and the lead-in of a list ("… in three layers:"): scored
    #: with the unit (a table row under "Exit codes" is about exit codes), never shown
    context: str = ""


def in_context(
    texts: Sequence[str], memory: int = 0, before: Sequence[str] | None = None
) -> list[Unit]:
    """Units of one memory with their heading and list lead-in; headings are not units.

    ``before`` (one per text, as ``split_units(..., before=True)`` gives them) holds the
    sentence before each unit in its paragraph or list item, scored with the unit too: a
    sentence's subject is often named in the one before it ("The file's type is
    `memory.vector_dtype`. `f16` halves the index size.")."""
    out: list[Unit] = []
    heading = lead = ""
    for j, text in enumerate(texts):
        if text.startswith("#"):
            heading, lead = text.lstrip("#").strip(), ""
            continue
        listed = _LIST_ITEM.match(text) is not None
        prior = before[j] if before is not None else ""
        parts = (heading, lead if listed else "", prior)
        out.append(Unit(memory, j, text, " ".join(filter(None, parts))))
        if not listed:
            lead = text if text.rstrip().endswith(":") else ""
    return out


_SUFFIXES = ("ation", "ion", "ing", "ed", "e")  # promotion, promote, promoted → promot
_DOUBLED = re.compile(r"([b-df-hj-np-tv-z])\1$")  # embedd → embed, runn → run


def _stem(word: str) -> str:
    """A word folded to a crude stem: plurals to the singular (codes → code, entries → entry),
    then, for a plain word, one verb or noun ending (learned → learn, promotion and promote
    → promot, embedding and embedder → embed); names, numbers and flags are left alone."""
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if not word.isalpha() or len(word) <= 4:
        return word
    if len(word) > 6 and word.endswith("er"):
        word = word[:-2]
    else:
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word = word[: -len(suffix)]
                break
    return _DOUBLED.sub(r"\1", word) if len(word) > 4 else word


def terms(text: str) -> list[str]:
    """Content words of ``text``, lowercased and crudely stemmed (stop words left out)."""
    words = _WORD.findall(text.lower().replace("`", " "))
    return [_stem(w) for w in words if w not in _STOP]


def _cut(text: str) -> str:
    if len(text) <= MAX_UNIT_CHARS:
        return text
    cut = text[:MAX_UNIT_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


_CLAUSE = re.compile(r"(?<=[,;:)])\s+|\s+(?=[(—–])")


def window(text: str, asked: set[str], kinds: Sequence[re.Pattern[str]] = ()) -> str:
    """``text`` cut to its run of clauses (at most ``WINDOW_CHARS``) holding most of the
    ``asked`` terms and a value of the asked kind, with room after the last of them (a value
    follows what it is about); "…" marks a cut."""
    if len(text) <= WINDOW_CHARS:
        return text
    bounds = [0, *(m.end() for m in _CLAUSE.finditer(text)), len(text)]
    clauses = list(itertools.pairwise(bounds))
    held = [bool(asked & set(terms(text[a:b]))) for a, b in clauses]
    best: tuple[float, int, int] | None = None
    best_span = (0, WINDOW_CHARS)
    for i, (a, _) in enumerate(clauses):
        j = i
        while j + 1 < len(clauses) and clauses[j + 1][1] - a <= WINDOW_CHARS:
            j += 1
        b = clauses[j][1] if clauses[j][1] - a <= WINDOW_CHARS else a + WINDOW_CHARS
        piece = text[a:b]
        hits = len(asked & set(terms(piece))) + 0.5 * any(k.search(piece) for k in kinds)
        last = max((clauses[k][1] for k in range(i, j + 1) if held[k]), default=a)
        key = (hits, min(b - last, 80), -a)
        if best is None or key > best:
            best, best_span = key, (a, b)
    a, b = best_span
    return ("… " if a else "") + text[a:b].strip() + (" …" if b < len(text) else "")


def sentences(text: str) -> list[str]:
    """``text`` split into sentences; a colon ends one only after ``LABEL_WORDS`` words or
    more, so a short label stays with its value."""
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        last = out[-1] if out else ""
        if last.endswith(":") and len(_LIST_ITEM.sub("", last).split()) < LABEL_WORDS:
            out[-1] = f"{last} {piece}"
        else:
            out.append(piece)
    return out


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _row(header: str | None, row: str) -> str:
    """A table row as "column: value; …" when its header is known, else its cells."""
    cells = _cells(row)
    names = _cells(header) if header else []
    if len(names) != len(cells):
        return "; ".join(c for c in cells if c)
    pairs = zip(names, cells, strict=True)
    return "; ".join(f"{name}: {cell}" if name else cell for name, cell in pairs if cell)


@overload
def split_units(text: str) -> list[str]: ...
@overload
def split_units(text: str, *, before: Literal[True]) -> tuple[list[str], list[str]]: ...


def split_units(text: str, *, before: bool = False) -> list[str] | tuple[list[str], list[str]]:
    """``text`` (markdown) as short units: sentences, list items, table rows, code lines.

    With ``before``, also what each unit is read with: the sentence before it in its
    paragraph or list item ("" for the first, and for table rows), and for a line of code
    the sentence introducing its block (when it ends in ":") and the block's first line."""
    units: list[str] = []
    priors: list[str] = []
    paragraph: list[str] = []
    header: str | None = None  # the current table's header row
    in_code = False

    def add(unit: str, prior: str = "") -> None:
        units.append(unit)
        priors.append(prior)

    def flush() -> None:
        if paragraph:
            prior = ""
            for sentence in sentences(" ".join(paragraph)):
                if not sentence.strip():
                    continue
                add(_cut(sentence), prior)
                prior = _cut(sentence)
            paragraph.clear()

    lines = [raw.strip() for raw in text.splitlines()]
    # what introduces a code block: the sentence before it when it ends in ":" ("Ollama
    # (no key needed):"), then also the block's first line (a TOML table, a command)
    intro = ""
    first = False
    for n, line in enumerate(lines):
        if line.startswith("```"):
            flush()
            in_code = not in_code
            last = units[-1] if in_code and units and CODE_CONTEXT else ""
            intro, first = (last if last.endswith(":") else ""), True
            continue
        if in_code:
            if line:
                add(_cut(line), intro)
                if first and CODE_CONTEXT:
                    intro = f"{intro} {_cut(line)}".strip()
                first = False
            continue
        if not line:
            flush()
            header = None
            continue
        if line.startswith("|"):
            flush()
            if _TABLE_RULE.match(line):
                continue
            following = lines[n + 1] if n + 1 < len(lines) else ""
            if _TABLE_RULE.match(following):
                header = line
            elif re.search(r"\w", line):
                add(_cut(_row(header, line)))
            continue
        header = None
        if line.startswith("#") or _LIST_ITEM.match(line):
            flush()
        paragraph.append(line)
        if line.startswith("#"):
            flush()
    flush()
    return (units, priors) if before else units


def _cosines(embedder: Embedder, question: str, texts: Sequence[str]) -> list[float]:
    import numpy as np

    q = np.asarray(embedder.embed_queries([question]), dtype=np.float32)[0]
    docs = np.asarray(embedder.embed_documents(list(texts)), dtype=np.float32)
    q = q / (np.linalg.norm(q) or 1.0)
    norms = np.linalg.norm(docs, axis=1)
    norms[norms == 0] = 1.0
    return [float(x) for x in (docs @ q) / norms]


def _flat(text: str) -> str:
    return " ".join(text.split())


def score_units(
    question: str, units: Sequence[Unit], embedder: Embedder | None = None
) -> list[float]:
    """How well each unit matches ``question``: rarity-weighted term overlap plus cosine."""
    asked = set(terms(question))
    bags = [set(terms(u.text)) for u in units]
    around = [set(terms(u.context)) - bag for u, bag in zip(units, bags, strict=True)]
    df = Counter(t for bag, ctx in zip(bags, around, strict=True) for t in (bag | ctx) & asked)
    n = len(units)
    weight = {t: math.log(1 + n / (1 + df[t])) for t in asked}
    total = sum(weight.values()) or 1.0
    lexical = [
        (sum(weight[t] for t in bag & asked) + CONTEXT_SHARE * sum(weight[t] for t in ctx & asked))
        / total
        for bag, ctx in zip(bags, around, strict=True)
    ]
    semantic = _cosines(embedder, question, [u.text for u in units]) if embedder else [0.0] * n
    kinds = asked_kinds(question) if KIND_WEIGHT else []
    typed = [KIND_WEIGHT if any(k.search(u.text) for k in kinds) else 0.0 for u in units]
    parts = zip(lexical, semantic, typed, strict=True)
    return [LEXICAL_WEIGHT * lx + SEMANTIC_WEIGHT * sm + ty for lx, sm, ty in parts]


#: the order of the kept units within a focused memory
Order = Literal["best_first", "best_last", "document"]


def focus(
    question: str,
    memories: Sequence[UsedMemory],
    *,
    tokens: int,
    count: Callable[[Sequence[Message]], int],
    embedder: Embedder | None = None,
    neighbours: int = 0,
    order: Order = "best_first",
) -> list[UsedMemory]:
    """The memories cut down to their units that best match ``question``, within ``tokens``.

    Memories without a kept unit are left out; the rest come best first, each holding its
    kept units joined by "…" in ``order``: best first, best last, or as in the memory
    ("document"), so citations stay per memory. ``neighbours`` keeps that many units on
    either side of each chosen one.
    """
    units: list[Unit] = []
    for i, m in enumerate(memories):
        texts, priors = split_units(m.text, before=True)
        units += in_context(texts, i, priors if PRIOR_CONTEXT else None)
    if not units:
        return []
    asked, kinds = set(terms(question)), asked_kinds(question)
    units = [replace(u, text=window(u.text, asked, kinds)) for u in units]
    scores = score_units(question, units, embedder)
    base = count([Message("user", "")])
    by_key = {(u.memory, u.order): u for u in units}
    chosen: dict[tuple[int, int], float] = {}
    seen: set[str] = set()  # overlapping chunks repeat units: each is shown once
    left = tokens
    for idx in sorted(range(len(units)), key=lambda k: -scores[k]):
        unit = units[idx]
        keys = [(unit.memory, unit.order + d) for d in range(-neighbours, neighbours + 1)]
        new = [
            k for k in keys if k in by_key and k not in chosen and _flat(by_key[k].text) not in seen
        ]
        if not new:
            continue
        size = sum(count([Message("user", by_key[k].text)]) - base for k in new)
        if size > left:
            if left < 20:
                break
            continue
        for k in new:
            chosen[k] = max(chosen.get(k, -math.inf), scores[idx])
            seen.add(_flat(by_key[k].text))
        left -= size
    best: dict[int, float] = {}
    for (mem, _), s in chosen.items():
        best[mem] = max(best.get(mem, -math.inf), s)
    out: list[UsedMemory] = []
    for mem in sorted(best, key=lambda i: -best[i]):
        kept = sorted(order for (i, order) in chosen if i == mem)
        if order != "document":
            kept.sort(key=lambda o: chosen[(mem, o)], reverse=order == "best_first")
        text = JOIN.join(by_key[(mem, o)].text for o in kept)
        out.append(replace(memories[mem], text=text))
    return out
