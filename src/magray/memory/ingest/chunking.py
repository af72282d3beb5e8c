"""Splitting an ingested text into chunks worth embedding.

A chunk is always an exact slice of the original text: ``text[start:end] ==
chunk.text``, where offsets are Python ``str`` indices (code points) and a chunk
never starts or ends with whitespace. Lines are counted by ``"\\n"`` and are
1-based, so CRLF files number their lines like any editor does.

How a text is cut, by kind:

- ``markdown``: a new section starts at every ATX (``#``) or setext heading;
  inside a section, blocks are paragraphs and fenced code blocks (a fence is
  never split while it fits ``max_chars``). YAML front matter is one block.
  Each chunk carries its heading path in ``Chunk.context`` ("Title > Section"),
  kept out of ``Chunk.text`` so offsets stay exact. ``Chunk.lead`` holds what a
  reader of the chunk alone would miss, to be stored before it (``stored_text``):
  the headings above its start that it does not contain, as one ``#`` line, and,
  for a chunk that starts inside a table or a fenced code block, the table's
  header and separator rows or the fence's opening line. A table is cut between
  rows only.
- ``code``: blocks separated by blank lines; for Python a top-level ``def``,
  ``class``, ``async def`` or decorator also starts a block and a new chunk.
  Code is never cut inside a line unless that line alone exceeds ``max_chars``.
- ``text``: paragraphs (blank-line separated).

A block longer than ``max_chars`` is split into sentences (prose) or lines
(code, lists, tables), then words, and as a last resort cut hard at
``max_chars`` (backing off so a combining mark or emoji joiner stays with its
base character). Adjacent pieces are then packed greedily up to
``target_chars``; a chunk shorter than a quarter of ``target_chars`` swallows
the following piece even across a section start, and a tiny last chunk is
merged into the previous one, always within ``max_chars``.

Overlap: only where a chunk boundary falls *inside* a block that had to be
split (a long paragraph, a long function), the next chunk's ``start`` is moved
back by at most ``overlap_chars`` to the start of a sentence, line or word, so
it repeats the tail of the previous chunk. Chunks that begin at a natural
boundary (a paragraph, a heading, a top-level block) never overlap. Every chunk,
overlap included, is at most ``max_chars`` long, without exception; starts and
ends strictly increase; with ``overlap_chars=0`` chunks are disjoint.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from magray.errors import UsageError
from magray.memory.ingest.segments import (
    CODE,
    PROSE,
    Builder,
    Cuts,
    Piece,
    line_spans,
    segment_code,
    segment_markdown,
    segment_text,
    trim,
)
from magray.memory.records import Source

KINDS = ("markdown", "code", "text")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a source text, with where it came from.

    Attributes:
        text: exactly ``original[source.start:source.end]``.
        source: uri, character offsets and 1-based inclusive line numbers.
        context: the Markdown heading path enclosing the whole chunk, joined
            with " > " ("" for code, plain text, or text before any heading).
        lead: the lines a reader of ``text`` alone misses (see the module
            docstring), "" when none; not part of the source slice.
    """

    text: str
    source: Source
    context: str = ""
    lead: str = ""

    @property
    def stored_text(self) -> str:
        """What ingest stores, embeds and indexes: ``lead``, a line break, ``text``."""
        return f"{self.lead}\n{self.text}" if self.lead else self.text


def _merge(
    pieces: list[Piece], target_chars: int, max_chars: int, min_chars: int
) -> list[list[Piece]]:
    groups: list[list[Piece]] = []
    for piece in pieces:
        if groups:
            group = groups[-1]
            size = group[-1].end - group[0].start
            small = size < min_chars
            limit = max_chars if small and not piece.hard else target_chars
            if piece.end - group[0].start <= limit and (small or not piece.hard):
                group.append(piece)
                continue
        groups.append([piece])
    if len(groups) >= 2:
        last, before = groups[-1], groups[-2]
        if last[-1].end - last[0].start < min_chars and last[-1].end - before[0].start <= max_chars:
            before.extend(groups.pop())
    return groups


def _overlap_start(
    text: str, floor: int, start: int, end: int, overlap: int, levels: Sequence[Cuts]
) -> int:
    """The earliest unit start in [floor, start) at the most preferred level, else start."""
    lo = max(floor, start - overlap)
    if lo >= start:
        return start
    for cuts_of in levels:
        for cut in cuts_of(text, max(0, lo - 8), start):
            if cut >= lo:
                a, _ = trim(text, cut, end)
                if a < start:
                    return a
    return start


def _common_prefix(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0]
    for p in paths[1:]:
        n = 0
        while n < min(len(prefix), len(p)) and prefix[n] == p[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _lead(text: str, first: Piece, start: int) -> str:
    """The heading path above ``start`` not in the chunk, and an open table's or fence's
    opening lines that the chunk starting at ``start`` cuts off."""
    parts = []
    path = first.context[:-1] if first.heading else first.context
    if path:
        parts.append("# " + " > ".join(path))
    if first.lead is not None and start > first.lead[0]:
        opening = text[first.lead[0] : min(first.lead[1], start)].strip()
        if opening:
            parts.append(opening)
    return "\n".join(parts)


def chunk(
    text: str,
    *,
    kind: str,
    uri: str,
    language: str | None = None,
    target_chars: int = 1200,
    max_chars: int = 2000,
    overlap_chars: int = 150,
) -> list[Chunk]:
    """Split ``text`` into chunks whose offsets slice it exactly.

    Args:
        text: the whole decoded source text.
        kind: "markdown", "code" or "text" (as ``SourceFile.kind``).
        uri: stored in every chunk's ``Source``.
        language: the code language; when None, ``.py``/``.pyi`` uris mean Python.
        target_chars: pieces are packed into chunks up to this many characters.
        max_chars: no chunk is ever longer than this.
        overlap_chars: the most a chunk repeats of the previous one, only where
            a block had to be split (see the module docstring).

    Returns:
        The chunks in text order; empty for a text that is empty or all whitespace.

    Raises:
        UsageError: an unknown kind or inconsistent sizes.
    """
    if kind not in KINDS:
        raise UsageError(f"Unknown chunk kind {kind!r}; use one of {', '.join(KINDS)}.")
    if not 0 < target_chars <= max_chars or overlap_chars < 0:
        raise UsageError(
            "Chunk sizes must satisfy 0 < target_chars <= max_chars and overlap_chars >= 0."
        )
    lines = line_spans(text)
    builder = Builder(text, max_chars)
    if language is None and PurePosixPath(uri).suffix.lower() in (".py", ".pyi", ".pyw"):
        language = "python"
    if kind == "markdown":
        segment_markdown(text, lines, builder)
        overlap_levels = PROSE
    elif kind == "code":
        segment_code(text, lines, language == "python", builder)
        overlap_levels = CODE
    else:
        segment_text(text, lines, builder)
        overlap_levels = PROSE
    groups = _merge(builder.pieces, target_chars, max_chars, max(1, target_chars // 4))

    newlines = [m.start() for m in re.finditer("\n", text)]
    chunks: list[Chunk] = []
    prev_start = -1
    for group in groups:
        start, end = group[0].start, group[-1].end
        if group[0].cont and overlap_chars and chunks:
            floor = max(prev_start + 1, end - max_chars)
            levels = group[0].overlap or overlap_levels
            start = _overlap_start(text, floor, start, end, overlap_chars, levels)
        prev_start = start
        source = Source(
            uri=uri,
            start=start,
            end=end,
            line_start=bisect.bisect_left(newlines, start) + 1,
            line_end=bisect.bisect_left(newlines, end - 1) + 1,
        )
        context = " > ".join(_common_prefix([p.context for p in group]))
        lead = _lead(text, group[0], start)
        chunks.append(Chunk(text=text[start:end], source=source, context=context, lead=lead))
    return chunks
