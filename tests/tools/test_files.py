"""The file tools, each through its real implementation on a temp workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.errors import DeniedError, ToolError, UsageError
from magray.tools.base import ToolContext
from magray.tools.registry import default_registry

TOOLS = default_registry()


def call(ctx: ToolContext, name: str, /, **args: object):  # type: ignore[no-untyped-def]
    tool = TOOLS.get(name)
    return tool.run(tool.parse(args), ctx)


def test_read_whole_and_line_range(ctx: ToolContext) -> None:
    assert call(ctx, "file_read", path="hello.txt").output == "one\ntwo\nthree\n"
    part = call(ctx, "file_read", path="hello.txt", start_line=2, end_line=3)
    assert part.output == "two\nthree\n"
    assert part.data["total_lines"] == 3
    with pytest.raises(ToolError, match=r"hello\.txt has 3 line"):
        call(ctx, "file_read", path="hello.txt", start_line=10**15)


def test_read_missing_file_is_a_tool_error(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        call(ctx, "file_read", path="nope.txt")


def test_unknown_argument_is_a_usage_error(ctx: ToolContext) -> None:
    with pytest.raises(UsageError, match="file_read: invalid arguments") as raised:
        call(ctx, "file_read", path="hello.txt", bogus=1)
    # what to give instead: the arguments the tool takes, required ones marked
    assert raised.value.message.endswith("; it takes path (required), start_line, end_line.")


def test_write_is_atomic_and_creates_folders(ctx: ToolContext, workspace: Path) -> None:
    result = call(ctx, "file_write", path="new/dir/a.txt", content="hi\n")
    assert result.ok
    assert (workspace / "new" / "dir" / "a.txt").read_text() == "hi\n"
    assert not [p for p in (workspace / "new" / "dir").iterdir() if p.name.endswith(".tmp")]


def test_edit_replaces_exactly_one_match(ctx: ToolContext, workspace: Path) -> None:
    result = call(ctx, "file_edit", path="hello.txt", search="two", replace="2")
    assert (workspace / "hello.txt").read_text() == "one\n2\nthree\n"
    assert "-two" in result.output and "+2" in result.output


def test_edit_must_match_once(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "dup.txt").write_text("x x x", encoding="utf-8")
    with pytest.raises(ToolError, match="matched 3 times"):
        call(ctx, "file_edit", path="dup.txt", search="x", replace="y")
    with pytest.raises(ToolError, match="matched 0 times"):
        call(ctx, "file_edit", path="dup.txt", search="zzz", replace="y")
    assert (workspace / "dup.txt").read_text() == "x x x"


def test_list_glob_grep(ctx: ToolContext) -> None:
    assert call(ctx, "file_list").data == ["hello.txt", "pkg/"]
    assert call(ctx, "file_list", recursive=True).data == ["hello.txt", "pkg/mod.py"]
    assert call(ctx, "file_glob", pattern="**/*.py").data == ["pkg/mod.py"]
    grep = call(ctx, "file_grep", pattern="RETURN", ignore_case=True)
    assert grep.output == "pkg/mod.py:2:    return 1"


def test_move_and_delete(ctx: ToolContext, workspace: Path) -> None:
    call(ctx, "file_move", src="hello.txt", dst="moved/hello.txt")
    assert (workspace / "moved" / "hello.txt").exists()
    assert not (workspace / "hello.txt").exists()
    with pytest.raises(ToolError, match="already exists"):
        call(ctx, "file_move", src="pkg/mod.py", dst="moved/hello.txt")
    call(ctx, "file_delete", path="moved/hello.txt")
    assert not (workspace / "moved" / "hello.txt").exists()


def test_output_is_capped(workspace: Path) -> None:
    (workspace / "big.txt").write_text("x" * 5000, encoding="utf-8")
    ctx = ToolContext(roots=(workspace,), output_cap=100)
    out = call(ctx, "file_read", path="big.txt").output
    assert out.startswith("x" * 100)
    assert "output truncated: 4900 more characters" in out


def test_write_preview_is_a_diff_and_changes_nothing(ctx: ToolContext, workspace: Path) -> None:
    tool = TOOLS.get("file_write")
    shown = tool.preview(tool.parse({"path": "hello.txt", "content": "one\n"}), ctx)
    assert "--- a/hello.txt" in shown and "-two" in shown
    assert (workspace / "hello.txt").read_text() == "one\ntwo\nthree\n"


@pytest.mark.parametrize(
    ("path", "why"),
    [("../outside.txt", "climbs out"), ("/etc/passwd", "absolute path")],
)
def test_paths_outside_the_roots_are_denied(ctx: ToolContext, path: str, why: str) -> None:
    with pytest.raises(DeniedError, match=why):
        call(ctx, "file_read", path=path)


def test_symlink_escape_is_denied(ctx: ToolContext, workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret", encoding="utf-8")
    (workspace / "link.txt").symlink_to(secret)
    with pytest.raises(DeniedError, match="symlink"):
        call(ctx, "file_read", path="link.txt")
    with pytest.raises(DeniedError):
        call(ctx, "file_write", path="link.txt", content="overwrite")
    assert secret.read_text() == "s3cret"
    # a symlinked file is also left out of listings that walk the tree
    assert "link.txt" not in call(ctx, "file_grep", pattern="s3cret").output
