"""Finding block boundaries in a text for ``chunking``: the private half of the chunker.

Every function here works on offsets into the original text and returns trimmed
spans (no leading or trailing whitespace); see ``chunking`` for the rules.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Piece:
    start: int
    end: int
    context: tuple[str, ...] = ()
    hard: bool = False  # a section starts here: begin a new chunk unless the current one is small
    cont: bool = False  # continues a block that had to be split: the chunk may get overlap
    heading: bool = False  # a Markdown heading (its own title ends ``context``)
    #: the span of the block's opening lines a reader needs to read a later part of it (a
    #: table's header and separator rows, a code fence's opening line)
    lead: tuple[int, int] | None = None
    #: where an overlap may start inside this block (None: the text kind's levels)
    overlap: tuple[Cuts, ...] | None = None


Cuts = Callable[[str, int, int], list[int]]  # cut offsets strictly inside (start, end)

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+|[。！？]+[」』”’)）]*\s*")
_WHITESPACE = re.compile(r"\s+")


def _sentence_cuts(text: str, start: int, end: int) -> list[int]:
    return [m.end() for m in _SENTENCE_END.finditer(text, start, end) if start < m.end() < end]


def _line_cuts(text: str, start: int, end: int) -> list[int]:
    cuts = []
    i = text.find("\n", start, end)
    while i != -1:
        if i + 1 < end:
            cuts.append(i + 1)
        i = text.find("\n", i + 1, end)
    return cuts


def _word_cuts(text: str, start: int, end: int) -> list[int]:
    return [m.end() for m in _WHITESPACE.finditer(text, start, end) if start < m.end() < end]


PROSE: tuple[Cuts, ...] = (_sentence_cuts, _line_cuts, _word_cuts)
LINES_FIRST: tuple[Cuts, ...] = (_line_cuts, _sentence_cuts, _word_cuts)
CODE: tuple[Cuts, ...] = (_line_cuts, _word_cuts)
LINES: tuple[Cuts, ...] = (_line_cuts,)  # whole lines only: table rows, fenced code


def trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _is_glue(ch: str) -> bool:
    """True for a character that must not begin a piece: it belongs to the one before."""
    code = ord(ch)
    return (
        unicodedata.combining(ch) != 0
        or ch in "\u200d\ufe0e\ufe0f"
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tones
        or 0xE0020 <= code <= 0xE007F  # emoji tag sequences
    )


def _glued(text: str, i: int) -> bool:
    """True when cutting before text[i] would split a grapheme."""
    return _is_glue(text[i]) or text[i - 1] == "\u200d"


def _hard_cut(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    out = []
    while end - start > max_chars:
        cut = start + max_chars
        back = cut
        while back > max(start + 1, cut - 32) and _glued(text, back):
            back -= 1
        if _glued(text, back):
            back = cut
        a, b = trim(text, start, back)
        if a < b:
            out.append((a, b))
        start, end = trim(text, back, end)
    if start < end:
        out.append((start, end))
    return out


def _split(
    text: str, start: int, end: int, levels: Sequence[Cuts], max_chars: int
) -> list[tuple[int, int]]:
    """Cut the trimmed span [start, end) into trimmed spans of at most max_chars."""
    if end - start <= max_chars:
        return [(start, end)]
    for i, cuts_of in enumerate(levels):
        cuts = cuts_of(text, start, end)
        if not cuts:
            continue
        out: list[tuple[int, int]] = []
        bounds = [start, *cuts, end]
        for a, b in itertools.pairwise(bounds):
            a, b = trim(text, a, b)
            if a < b:
                out.extend(_split(text, a, b, levels[i + 1 :], max_chars))
        return out
    return _hard_cut(text, start, end, max_chars)


class Builder:
    """Collects pieces from blocks, splitting blocks that are too long."""

    def __init__(self, text: str, max_chars: int) -> None:
        self.text = text
        self.max_chars = max_chars
        self.pieces: list[Piece] = []

    def block(
        self,
        start: int,
        end: int,
        levels: Sequence[Cuts],
        *,
        context: tuple[str, ...] = (),
        hard: bool = False,
        heading: bool = False,
        lead: tuple[int, int] | None = None,
        overlap: tuple[Cuts, ...] | None = None,
    ) -> None:
        start, end = trim(self.text, start, end)
        if start >= end:
            return
        spans = _split(self.text, start, end, levels, self.max_chars)
        for i, (a, b) in enumerate(spans):
            self.pieces.append(
                Piece(
                    a,
                    b,
                    context,
                    hard=hard and i == 0,
                    cont=i > 0,
                    heading=heading and i == 0,
                    lead=lead,
                    overlap=overlap,
                )
            )


def line_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, the end excluding the newline."""
    spans = []
    pos = 0
    while pos < len(text):
        nl = text.find("\n", pos)
        if nl == -1:
            spans.append((pos, len(text)))
            break
        spans.append((pos, nl))
        pos = nl + 1
    return spans


def _blank(text: str, span: tuple[int, int]) -> bool:
    return text[span[0] : span[1]].isspace() or span[0] == span[1]


def segment_text(text: str, lines: list[tuple[int, int]], out: Builder) -> None:
    first: int | None = None
    for i, span in enumerate(lines):
        if _blank(text, span):
            if first is not None:
                out.block(lines[first][0], lines[i - 1][1], PROSE)
                first = None
        elif first is None:
            first = i
    if first is not None:
        out.block(lines[first][0], lines[-1][1], PROSE)


_PY_TOP = re.compile(r"(?:async\s+def|def|class)\b|@")


def segment_code(text: str, lines: list[tuple[int, int]], python: bool, out: Builder) -> None:
    def flush(first: int, last: int) -> None:
        head = text[lines[first][0] : lines[first][1]]
        if python:
            hard = bool(_PY_TOP.match(head))
        else:
            hard = bool(head) and not head[0].isspace() and head[0] not in ")]}"
        out.block(lines[first][0], lines[last][1], CODE, hard=hard)

    first: int | None = None
    for i, span in enumerate(lines):
        if _blank(text, span):
            if first is not None:
                flush(first, i - 1)
                first = None
            continue
        line = text[span[0] : span[1]]
        if first is not None and python and _PY_TOP.match(line):
            prev = text[lines[i - 1][0] : lines[i - 1][1]]
            if not prev.startswith(("@", "#")):
                flush(first, i - 1)
                first = None
        if first is None:
            first = i
    if first is not None:
        flush(first, len(lines) - 1)


_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_ATX = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*\r?$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*\r?$")
_LISTY = re.compile(r"\s*(?:[-*+|>]|\d+[.)])(?:\s|$)")
_TABLE_ROW = re.compile(r" {0,3}\|")
_TABLE_RULE = re.compile(r" {0,3}\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")


def segment_markdown(text: str, lines: list[tuple[int, int]], out: Builder) -> None:
    path: list[tuple[int, str]] = []
    para: int | None = None  # first line of the open paragraph

    def context() -> tuple[str, ...]:
        return tuple(title for _, title in path if title)

    def heading(level: int, title: str, first: int, last: int) -> None:
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, title.strip()))
        span = (lines[first][0], lines[last][1])
        out.block(*span, PROSE, context=context(), hard=True, heading=True)

    def close_para(last: int) -> None:
        nonlocal para
        if para is not None:
            head = text[lines[para][0] : lines[para][1]]
            start, end = lines[para][0], lines[last][1]
            if _TABLE_ROW.match(head):  # a table: rows stay whole, a later part gets the header
                lead = None
                if para < last and _TABLE_RULE.match(text[lines[para + 1][0] : lines[para + 1][1]]):
                    lead = (start, lines[para + 1][1])
                out.block(start, end, LINES_FIRST, context=context(), lead=lead, overlap=LINES)
            elif _LISTY.match(head):
                out.block(start, end, LINES_FIRST, context=context(), overlap=LINES_FIRST)
            else:
                out.block(start, end, PROSE, context=context())
            para = None

    i = 0
    if lines and text[lines[0][0] : lines[0][1]].rstrip("\r") == "---":
        for j in range(1, len(lines)):
            if text[lines[j][0] : lines[j][1]].rstrip("\r") in ("---", "..."):
                out.block(lines[0][0], lines[j][1], CODE)
                i = j + 1
                break
    while i < len(lines):
        start, end = lines[i]
        line = text[start:end]
        fence = _FENCE.match(line)
        if fence and not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
            close_para(i - 1)
            marker = fence.group(1)
            close = re.compile(rf" {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
            last = len(lines) - 1
            for j in range(i + 1, len(lines)):
                if close.match(text[lines[j][0] : lines[j][1]]):
                    last = j
                    break
            fenced = (start, end)  # its opening line, repeated before a later part
            out.block(start, lines[last][1], CODE, context=context(), lead=fenced, overlap=LINES)
            i = last + 1
            continue
        atx = _ATX.match(line)
        if atx:
            close_para(i - 1)
            heading(len(atx.group(1)), atx.group(2) or "", i, i)
        elif not line.strip():
            close_para(i - 1)
        elif para is not None and (setext := _SETEXT.match(line)):
            title = " ".join(text[s:e].strip() for s, e in lines[para:i])
            first, para = para, None
            heading(1 if setext.group(1)[0] == "=" else 2, title, first, i)
        elif para is None:
            para = i
        i += 1
    close_para(len(lines) - 1)
