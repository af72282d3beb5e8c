"""Chunking: exact offsets, sensible boundaries, and the invariants as properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magray.errors import UsageError
from magray.memory.ingest.chunking import KINDS, Chunk, chunk


def check_invariants(text: str, chunks: list[Chunk], max_chars: int, overlap: int) -> None:
    """Everything the chunker promises, for any text."""
    covered = bytearray(len(text))
    prev: Chunk | None = None
    for c in chunks:
        s, e = c.source.start, c.source.end
        assert s is not None and e is not None
        assert text[s:e] == c.text
        assert c.text and c.text.strip() == c.text
        assert len(c.text) <= max_chars
        assert c.source.line_start == text.count("\n", 0, s) + 1
        assert c.source.line_end == text.count("\n", 0, e - 1) + 1
        if prev is not None:
            assert prev.source.start is not None and prev.source.end is not None
            assert s > prev.source.start and e > prev.source.end
            if overlap == 0:
                assert s >= prev.source.end
        covered[s:e] = b"\1" * (e - s)
        prev = c
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert missing == []


ALPHABET = st.sampled_from(
    [
        *list("ab cd\n\n\n\r\t.!?#`~-=>*|@()"),
        "def ",
        "class ",
        "```",
        "## ",
        "。",
        "ж",
        "漢",
        "😀",
        "́",
        "\u200d",
        "️",
        "\u3000",
        "\x0c",
    ]
)
TEXTS = st.lists(ALPHABET, max_size=400).map("".join) | st.text(max_size=300)


@settings(max_examples=300, deadline=None)
@given(
    text=TEXTS,
    kind=st.sampled_from(KINDS),
    target=st.integers(1, 120),
    extra=st.integers(0, 120),
    overlap=st.integers(0, 60),
    python=st.booleans(),
)
def test_invariants_hold_for_any_text(
    text: str, kind: str, target: int, extra: int, overlap: int, python: bool
) -> None:
    uri = "x.py" if python else "x.txt"
    chunks = chunk(
        text,
        kind=kind,
        uri=uri,
        target_chars=target,
        max_chars=target + extra,
        overlap_chars=overlap,
    )
    check_invariants(text, chunks, target + extra, overlap)
    assert all(c.source.uri == uri for c in chunks)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("text", ["", "   ", "\n\n\r\n\t\n"])
def test_empty_or_blank_text_gives_no_chunks(kind: str, text: str) -> None:
    assert chunk(text, kind=kind, uri="e") == []


def test_small_text_is_one_chunk_trimmed() -> None:
    text = "\n\n  Hello world.  \n"
    [c] = chunk(text, kind="text", uri="t")
    assert c.text == "Hello world."
    assert (c.source.start, c.source.end, c.source.line_start, c.source.line_end) == (4, 16, 3, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_one_huge_line_is_cut_at_max_chars(kind: str) -> None:
    text = "x" * 5000
    chunks = chunk(text, kind=kind, uri="h", max_chars=2000)
    assert [len(c.text) for c in chunks] == [2000, 2000, 1000]
    check_invariants(text, chunks, 2000, 150)


def test_huge_line_prefers_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    chunks = chunk(text, kind="code", uri="h.js", overlap_chars=0)
    check_invariants(text, chunks, 2000, 0)
    assert all(c.text.startswith("word") and c.text[-1].isdigit() for c in chunks)
    assert all(len(c.text) <= 1200 for c in chunks[:-1])  # the tail may absorb a tiny rest


def test_hard_cut_keeps_emoji_sequences_whole() -> None:
    family = "👨\u200d👩\u200d👧"
    text = family * 1000
    chunks = chunk(text, kind="text", uri="e", max_chars=100, target_chars=100)
    check_invariants(text, chunks, 100, 150)
    assert all(c.text.startswith("👨") and c.text.endswith("👧") for c in chunks)


def test_crlf_line_numbers_and_offsets() -> None:
    text = "First paragraph line one.\r\nline two.\r\n\r\nSecond paragraph.\r\n"
    chunks = chunk(text, kind="text", uri="c", target_chars=20, max_chars=40)
    assert [c.text for c in chunks] == [
        "First paragraph line one.\r\nline two.",
        "Second paragraph.",
    ]
    assert [(c.source.line_start, c.source.line_end) for c in chunks] == [(1, 2), (4, 4)]


def test_cyrillic_cjk_and_emoji_sentences() -> None:
    text = (
        "Привет, мир. Это тест! " * 40
        + "\n\n"
        + "我们在这里。这是中文。" * 60
        + "\n\n"
        + "🚀 " * 300
    )
    chunks = chunk(text, kind="text", uri="u", target_chars=200, max_chars=300, overlap_chars=0)
    check_invariants(text, chunks, 300, 0)
    cjk = [c.text for c in chunks if "中文" in c.text and "🚀" not in c.text]
    assert len(cjk) >= 2 and all(t.endswith("。") for t in cjk)
    assert all(
        t.endswith((".", "!"))
        for t in (c.text for c in chunks if "мир" in c.text and "中" not in c.text)
    )


def test_long_paragraph_splits_on_sentences_with_overlap() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk(text, kind="text", uri="s", target_chars=300, max_chars=400, overlap_chars=80)
    check_invariants(text, chunks, 400, 80)
    for a, b in itertools.pairwise(chunks):
        assert a.source.end is not None and b.source.start is not None
        assert b.source.start < a.source.end  # overlaps the previous chunk
        assert a.source.end - b.source.start <= 80
        assert b.text.startswith("Sentence")


def test_paragraph_boundaries_do_not_overlap() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 50 for i in range(10))
    chunks = chunk(text, kind="text", uri="p", target_chars=300, max_chars=600, overlap_chars=100)
    check_invariants(text, chunks, 600, 0)
    assert all(c.text.startswith("Paragraph") for c in chunks)


MARKDOWN = """\
# Guide

Intro text for the guide that is long enough to stand on its own as a chunk.

## Install

Run the installer and follow the prompts until everything is in place, then restart.

```bash
pip install magray

magray --version
```

## Use

### Recall

Ask for memories by meaning, not just by keyword, and MAGRAY finds them for you.
"""


def test_markdown_sections_carry_their_heading_path() -> None:
    chunks = chunk(MARKDOWN, kind="markdown", uri="g.md", target_chars=120, max_chars=300)
    check_invariants(MARKDOWN, chunks, 300, 150)
    by_start = {c.text.splitlines()[0]: c.context for c in chunks}
    assert by_start["# Guide"] == "Guide"
    assert by_start["## Install"] == "Guide > Install"
    assert by_start["```bash"] == "Guide > Install"
    assert "## Use" in by_start or any("## Use" in c.text for c in chunks)
    recall = next(c for c in chunks if "by meaning" in c.text)
    assert recall.context.startswith("Guide > Use")
    # the fence stays whole even though it has a blank line inside
    assert any(c.text.startswith("```bash") and c.text.endswith("```") for c in chunks)


def test_markdown_fence_split_only_when_longer_than_max() -> None:
    body = "\n".join(f"line_{i} = {i}" for i in range(100))
    text = f"# Code\n\n```python\n{body}\n```\n"
    chunks = chunk(text, kind="markdown", uri="c.md", target_chars=200, max_chars=400)
    check_invariants(text, chunks, 400, 150)
    assert len(chunks) > 3
    assert all(c.context == "Code" for c in chunks)
    assert all("\n" not in c.text[:1] for c in chunks)


def test_markdown_with_only_headings() -> None:
    text = "# A\n## B\n### C\n\n# D\n"
    [c] = chunk(text, kind="markdown", uri="h.md")
    assert c.text == text.strip()
    assert c.context == ""  # the chunk spans two top-level sections


def test_markdown_setext_and_front_matter() -> None:
    text = (
        "---\ntitle: x\n---\nTitle\n=====\n\n"
        + "Body text. " * 30
        + "\n\nSub\n---\n\n"
        + "More. " * 40
    )
    chunks = chunk(text, kind="markdown", uri="s.md", target_chars=150, max_chars=400)
    check_invariants(text, chunks, 400, 150)
    # the small front matter joins the first section; the chunk spans both, so no context
    assert chunks[0].text.startswith("---\ntitle: x\n---\nTitle\n=====")
    assert chunks[0].context == ""
    assert chunks[-1].text.startswith("Sub\n---") and chunks[-1].context == "Title > Sub"


def test_python_splits_at_top_level_definitions() -> None:
    funcs = [
        f"@decorator\ndef f{i}(x):\n    y = x + {i}\n\n    return y * {'2' * 40}\n"
        for i in range(8)
    ]
    text = "import os\n\n\n" + "\n\n".join(funcs)
    chunks = chunk(text, kind="code", uri="m.py", target_chars=150, max_chars=300)
    check_invariants(text, chunks, 300, 150)
    assert all(c.text.startswith(("import", "@decorator")) for c in chunks)
    assert sum(c.text.count("def f") for c in chunks) == 8


def test_code_is_not_split_inside_a_line() -> None:
    text = "\n".join(f"const value{i} = computeSomething({i}, {i + 1});" for i in range(200))
    chunks = chunk(text, kind="code", uri="a.js", target_chars=300, max_chars=500)
    check_invariants(text, chunks, 500, 150)
    for c in chunks:
        assert c.text.startswith("const") and c.text.endswith(");")


def test_bad_arguments_raise_usage_error() -> None:
    with pytest.raises(UsageError):
        chunk("x", kind="pdf", uri="x")
    with pytest.raises(UsageError):
        chunk("x", kind="text", uri="x", target_chars=300, max_chars=200)
    with pytest.raises(UsageError):
        chunk("x", kind="text", uri="x", overlap_chars=-1)


def _table(rows: int) -> str:
    body = "\n".join(
        f"| `setting.{i}` | `{i * 7}` | What setting {i} does. It has two sentences. |"
        for i in range(rows)
    )
    return f"# Guide\n\n## All settings\n\n| key | default | meaning |\n|---|---:|---|\n{body}\n"


def test_a_chunk_starting_inside_a_table_leads_with_the_header_and_heading_path() -> None:
    text = _table(40)
    chunks = chunk(text, kind="markdown", uri="t.md", target_chars=400, max_chars=600)
    check_invariants(text, chunks, 600, 150)
    inside = [c for c in chunks if c.text.startswith("| `setting.")]
    assert len(inside) >= 3
    for c in inside:
        # rows stay whole: a chunk inside the table starts and ends on a row boundary
        assert c.text.endswith("|") and all(line.startswith("| ") for line in c.text.splitlines())
        assert c.lead == "# Guide > All settings\n| key | default | meaning |\n|---|---:|---|"
        assert c.stored_text == f"{c.lead}\n{c.text}"
    first = chunks[0]
    assert first.text.startswith("# Guide") and first.lead == ""
    assert first.stored_text == first.text


def test_the_lead_names_only_the_headings_the_chunk_does_not_hold() -> None:
    text = "# Guide\n\n" + "".join(
        f"## Part {i}\n\n" + f"Sentence {i} about part {i}. " * 20 + "\n\n" for i in range(4)
    )
    chunks = chunk(text, kind="markdown", uri="g.md", target_chars=300, max_chars=500)
    check_invariants(text, chunks, 500, 150)
    for c in chunks:
        if c.text.startswith("## Part"):
            assert c.lead == "# Guide"  # its own heading is in its text
        elif c.text.startswith("Sentence"):
            part = c.text.split()[1]
            assert c.lead == f"# Guide > Part {part}"


def test_a_chunk_starting_inside_a_fence_leads_with_its_opening_line() -> None:
    body = "\n".join(f"line_{i} = {i}" for i in range(100))
    text = f"# Code\n\n```python\n{body}\n```\n"
    chunks = chunk(text, kind="markdown", uri="c.md", target_chars=200, max_chars=400)
    check_invariants(text, chunks, 400, 150)
    later = [c for c in chunks if c.text.startswith("line_")]
    assert later and all(c.lead == "# Code\n```python" for c in later)
    assert chunks[0].lead == ""


def test_code_and_plain_text_have_no_lead() -> None:
    code = "\n\n".join(f"def f{i}():\n    return {i}\n" for i in range(30))
    text = "\n\n".join(f"Paragraph {i} of plain text." for i in range(60))
    for body, kind in ((code, "code"), (text, "text")):
        chunks = chunk(body, kind=kind, uri="x.py", target_chars=200, max_chars=400)
        assert len(chunks) > 1 and all(c.lead == "" for c in chunks)
