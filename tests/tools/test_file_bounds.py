"""File tools refuse what they cannot use (NUL bytes, long paths, symlink loops, FIFOs) as
audited refusals and stay within the call's timeout; grep and glob keep their semantics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.tools.clirun import audit_rows, run, tool


def test_nul_bytes_in_a_command_or_url_are_refused_not_crashes(
    workspace: Path, magray_home: Path
) -> None:
    result = tool(workspace, "shell_exec", 'argv=["echo", "a\\u0000b"]', yes=True)
    assert result.exit_code == 4 and "NUL byte" in result.stderr
    result = tool(workspace, "web_fetch", 'url="http://example.com/a\\u0000b"', yes=True)
    assert result.exit_code == 2 and "control characters" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [
        ("deny", "denied"),
        ("allow", "error"),
    ]


@pytest.mark.parametrize(
    "path",
    ['"a\\u0000b.txt"', "a/" * 2100 + "x", "n" * 300, "ok/" + "é" * 200],
    ids=["nul", "long-path", "long-name", "long-name-bytes"],
)
@pytest.mark.parametrize("name", ["file_read", "file_list", "file_grep", "file_glob"])
def test_unusable_paths_are_audited_refusals(
    name: str, path: str, workspace: Path, magray_home: Path
) -> None:
    extra = ["pattern=x"] if name in ("file_grep", "file_glob") else []
    result = tool(workspace, name, f"path={path}", *extra)
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("error: denied:") and "Traceback" not in result.output
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_a_symlink_loop_is_skipped_with_a_note(workspace: Path, magray_home: Path) -> None:
    (workspace / "loop").symlink_to(workspace / "loop")
    (workspace / "pkg" / "a").symlink_to(workspace / "pkg" / "b")
    (workspace / "pkg" / "b").symlink_to(workspace / "pkg" / "a")
    grep = tool(workspace, "file_grep", "pattern=return", "path=.")
    assert grep.exit_code == 0 and "pkg/mod.py:2:" in grep.stdout
    assert "[skipped loop: a symlink loop]" in grep.stdout
    for args in (("path=.",), ("path=.", "recursive=true"), ("path=pkg",)):
        listed = tool(workspace, "file_list", *args)
        assert listed.exit_code == 0 and "symlink loop" in listed.stdout
    globbed = tool(workspace, "file_glob", "pattern=**/*")
    assert globbed.exit_code == 0 and "pkg/mod.py" in globbed.stdout
    read = tool(workspace, "file_read", "path=loop")
    assert read.exit_code == 4 and "symlink loop" in read.stderr
    assert audit_rows(magray_home)[-1].decision == "deny"


def magray(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess; the generous timeout only stops a hang from hanging pytest."""
    return subprocess.run(
        [sys.executable, "-m", "magray", "tools", "run", "--root", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ},
    )


def test_a_fifo_is_refused_not_waited_on(workspace: Path, magray_home: Path) -> None:
    os.mkfifo(workspace / "pipe")
    read = magray(workspace, "file_read", "--arg", "path=pipe")
    assert read.returncode == 1 and "not a regular file" in read.stderr
    grep = magray(workspace, "file_grep", "--arg", "pattern=one", "--arg", "path=.")
    assert grep.returncode == 0 and "hello.txt:1:one" in grep.stdout
    edit = magray(
        workspace, "file_edit", "-a", "path=pipe", "-a", "search=a", "-a", "replace=b", "--yes"
    )
    assert edit.returncode == 1 and "not a regular file" in edit.stderr


def test_a_walk_stops_at_the_timeout(workspace: Path) -> None:
    from magray.errors import ToolError
    from magray.tools.base import ToolContext
    from magray.tools.files import Walk

    walk = Walk("file_grep", ToolContext(roots=(workspace,), timeout=5))
    walk.check_time()
    walk.deadline -= 10  # as if the walk had run past its time
    with pytest.raises(ToolError, match="took longer than 5s"):
        list(walk.files(workspace))


def test_a_runaway_pattern_stops_at_the_timeout(workspace: Path) -> None:
    (workspace / "a.txt").write_text("a" * 64 + "!\n", encoding="utf-8")
    args = ["--timeout", "0.5", "--arg", "pattern=(a|aa)+$", "--arg", "path=a.txt"]
    result = run(["tools", "run", "file_grep", "--root", str(workspace), *args])
    assert result.exit_code == 1 and "took longer than 0.5s" in result.stderr


def test_glob_keeps_pathlib_semantics(workspace: Path) -> None:
    from magray.tools.base import ToolContext
    from magray.tools.files import FileGlob

    (workspace / "pkg" / "sub").mkdir()
    (workspace / "pkg" / "sub" / "deep.py").write_text("", encoding="utf-8")
    (workspace / ".hidden.py").write_text("", encoding="utf-8")
    ctx = ToolContext(roots=(workspace,))
    glob = FileGlob()
    for pattern in ("**/*.py", "*", "pkg/*", "[a-h]*.txt", "pkg/**/d?ep.py", "**/sub"):
        mine = glob.run(glob.parse({"pattern": pattern}), ctx).data
        ref = sorted(p.relative_to(workspace).as_posix() for p in workspace.glob(pattern))
        assert mine == ref, pattern


GREP_PATTERNS = ["^b", "a$", r"\bfoo\b", r"x\s*y", "^$", r"\Afoo", r"o\Z", "foo(?!$)"]
GREP_PATTERNS += ["(?<=^)b", "(?s)a.b", "[^a]z", r"\Bz", "(?m)^z", "z*", r"o(?=\n)"]


@pytest.mark.parametrize("pattern", GREP_PATTERNS)
def test_grep_matches_line_by_line(pattern: str, workspace: Path) -> None:
    import re

    from magray.tools.base import ToolContext
    from magray.tools.files import FileGrep

    text = "foo\nbar\r\nbaz\x0cfoo bar\n\nx\ny\nzz\u2028a\nxy\nbz\n"
    (workspace / "t.txt").write_text(text, encoding="utf-8", newline="")
    grep = FileGrep()
    got = grep.run(grep.parse({"pattern": pattern, "path": "t.txt"}), ToolContext((workspace,)))
    lines = text.splitlines()
    want = [n for n, line in enumerate(lines, 1) if re.search(pattern, line)]
    assert [m["line"] for m in got.data] == want


@settings(max_examples=300, deadline=None)
@example(lines=["o", "x"], pattern=r"o\Z")
@example(lines=["x", "foo"], pattern=r"\Afoo")
@example(lines=["xa", "xb"], pattern=r"x[^y]*b")
@example(lines=["a\rb"], pattern="^b")
@given(
    lines=st.lists(st.text(alphabet="abfoz xy\r\x0c", max_size=8), max_size=6),
    pattern=st.sampled_from([*GREP_PATTERNS, "a", "b+", "^a.*b$", "a\\s+b", "x[^y]*b", "(a|b)\\1"]),
)
def test_grep_matches_what_a_line_by_line_search_matches(lines: list[str], pattern: str) -> None:
    import re

    import regex

    from magray.tools.base import ToolContext
    from magray.tools.files import _LINE_BOUND, Walk, _matching_lines

    walk = Walk("file_grep", ToolContext((Path.cwd(),)))
    split = "\n".join(lines).splitlines()
    whole = None if any(t in pattern for t in _LINE_BOUND) else regex.compile(pattern, regex.M)
    got = list(_matching_lines(walk, regex.compile(pattern), whole, split))
    assert got == [i for i, line in enumerate(split) if re.search(pattern, line)]
