"""`magray bench ask`: answers are scored against short expected parts, fairly."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.bench.ask import CASES, HELD_OUT, UNKNOWN, docs_paths, from_sources, matches
from magray.errors import UsageError

REPO = Path(__file__).resolve().parents[2]


def test_parts_alternatives_and_whole_words() -> None:
    assert matches(
        "They are **Interact**, Insights and `Assets` [1].", ["interact", "insights", "assets"]
    )
    assert not matches("Interact and Insights.", ["interact", "insights", "assets"])
    assert matches("It listens on port 5433.", ["5433"])
    assert not matches("port 54330", ["5433"]) and not matches("0.65", ["0.6"])
    assert matches("exit code 4", ["4"]) and not matches("exit code 40", ["4"])
    assert not matches("According to [3], the exit code is 4.", ["3"])
    assert matches("Use -c to continue.", ["-c|--continue"])
    # a number may be written as a word, the expected answer is in digits
    assert matches("It uses two read-only handles.", ["2"])
    assert not matches("It uses twenty handles, or someone's.", ["2"])
    assert matches("I don't know.", UNKNOWN) and not matches("Paris.", UNKNOWN)


def test_cases_cover_the_docs_and_their_answers_are_there() -> None:
    known = [c for c in CASES if c.sources]
    assert len(known) >= 40 and len(CASES) - len(known) >= 5
    for case in known:
        texts = " ".join((REPO / s).read_text(encoding="utf-8") for s in case.sources)
        assert matches(texts, case.expect), case.question


def test_held_out_questions_are_new_and_answered_by_the_docs() -> None:
    known = [c for c in HELD_OUT if c.sources]
    assert len(known) >= 20 and len(HELD_OUT) - len(known) >= 3
    assert not {c.question for c in HELD_OUT} & {c.question for c in CASES}
    for case in known:
        texts = " ".join((REPO / s).read_text(encoding="utf-8") for s in case.sources)
        assert matches(texts, case.expect), case.question


def test_docs_paths_need_the_checkout(tmp_path: Path) -> None:
    assert [p.name for p in docs_paths(REPO, report=True)] == ["README.md", "docs"]
    # by default without the page that reports this benchmark (it quotes its answers)
    paths = docs_paths(REPO)
    assert paths[0].name == "README.md" and REPO / "docs" / "memory.md" in paths
    assert REPO / "docs" / "benchmarks.md" not in paths and REPO / "docs" not in paths
    with pytest.raises(UsageError, match=r"no README\.md or docs/"):
        docs_paths(tmp_path)


def test_memories_from_the_answers_file_count_whether_stored_absolute_or_relative(
    tmp_path: Path,
) -> None:
    (tmp_path / "docs").mkdir()
    stored = (tmp_path / "docs" / "memory.md").resolve().as_posix()
    assert from_sources(stored, ("docs/memory.md", "README.md"), tmp_path)
    assert from_sources("docs/memory.md", ("docs/memory.md",), tmp_path)
    assert not from_sources(stored, ("README.md",), tmp_path)
    assert not from_sources(None, ("docs/memory.md",), tmp_path)
