"""HTML → readable text with the standard library's ``html.parser``.

Scripts, styles, navigation and other non-content elements are dropped; headings
become ``#`` lines, list items ``- `` lines, and block elements paragraph breaks.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = frozenset({"script", "style", "nav", "noscript", "template", "svg", "iframe", "head"})
_BLOCK = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol",
        "table", "tr", "blockquote", "pre", "form", "figure", "dl", "dt", "dd", "hr",
    }
)  # fmt: skip
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_SPACES = re.compile(r"[ \t\r\f\v\n]+")


class _Readable(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def _newlines(self, n: int) -> None:
        self.parts.append("\n" * n)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        if tag in _HEADINGS:
            self._newlines(2)
            self.parts.append("#" * _HEADINGS[tag] + " ")
        elif tag == "li":
            self._newlines(1)
            self.parts.append("- ")
        elif tag == "br":
            self._newlines(1)
        elif tag in _BLOCK:
            self._newlines(2)
        if tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag == "pre":
            self._pre = max(0, self._pre - 1)
        if tag in _HEADINGS or tag in _BLOCK:
            self._newlines(2)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip:
            return
        self.parts.append(data if self._pre else _SPACES.sub(" ", data))


def _tidy(line: str) -> str:
    """Drop trailing space and the single leading space left by collapsing (keeps indents)."""
    line = line.rstrip()
    return line[1:] if line.startswith(" ") and not line.startswith("  ") else line


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML page: readable text with headings and paragraph breaks."""
    parser = _Readable()
    parser.feed(html)
    parser.close()
    raw = "".join(parser.parts)
    lines = [_tidy(line) for line in raw.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return _SPACES.sub(" ", parser.title).strip(), text
