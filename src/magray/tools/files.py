"""Read-only file tools: file_read, file_list, file_glob, file_grep (all inside the roots)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult, cap_output
from magray.tools.paths import relative_to_roots, resolve_inside

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv"})
MAX_READ_BYTES = 5_000_000


def read_text(path: Path) -> str:
    """The UTF-8 text of a file, or a ToolError saying why it cannot be read."""
    if not path.exists():
        raise ToolError(f"{path} does not exist.")
    if path.is_dir():
        raise ToolError(f"{path} is a folder; use file_list.")
    if path.stat().st_size > MAX_READ_BYTES:
        raise ToolError(f"{path} is larger than {MAX_READ_BYTES} bytes; read a line range.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text.") from None


def walk_files(top: Path, roots: tuple[Path, ...]) -> Iterator[Path]:
    """Files under ``top`` (sorted, skipping VCS/cache folders and links that leave the roots)."""
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            real = path.resolve()
            if any(real == r or real.is_relative_to(r) for r in roots):
                yield path


class ReadArgs(ToolArgs):
    path: str = Field(description="File to read, relative to the workspace root.")
    start_line: int | None = Field(None, ge=1, description="First line to return (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to return (inclusive).")


class FileRead(Tool[ReadArgs]):
    name = "file_read"
    description = "Read a text file, optionally only lines start_line..end_line."
    risk = Risk.READ
    Args = ReadArgs
    path_fields = ("path",)

    def run(self, args: ReadArgs, ctx: ToolContext) -> ToolResult:
        path = resolve_inside(args.path, ctx.roots)
        lines = read_text(path).splitlines(keepends=True)
        start = args.start_line or 1
        end = min(args.end_line or len(lines), len(lines))
        if args.end_line is not None and args.end_line < start:
            raise ToolError(f"end_line {args.end_line} is before start_line {start}.")
        if start > max(len(lines), 1):
            raise ToolError(
                f"{args.path} has {len(lines)} line(s); start_line {start} is past its end."
            )
        text = "".join(lines[start - 1 : end])
        data = {"path": relative_to_roots(path, ctx.roots), "start_line": start}
        data.update({"end_line": end, "total_lines": len(lines)})
        return ToolResult(ok=True, output=cap_output(text, ctx.output_cap), data=data)


class ListArgs(ToolArgs):
    path: str = Field(".", description="Folder to list.")
    recursive: bool = Field(False, description="Also list sub-folders' files.")
    max_entries: int = Field(1000, ge=1, le=100_000, description="Most entries to return.")


class FileList(Tool[ListArgs]):
    name = "file_list"
    description = "List a folder's entries (folders end with '/')."
    risk = Risk.READ
    Args = ListArgs
    path_fields = ("path",)

    def run(self, args: ListArgs, ctx: ToolContext) -> ToolResult:
        top = resolve_inside(args.path, ctx.roots)
        if not top.is_dir():
            raise ToolError(f"{args.path} is not a folder.")
        entries: list[str] = []
        if args.recursive:
            for path in walk_files(top, ctx.roots):
                entries.append(path.relative_to(top).as_posix())
                if len(entries) >= args.max_entries:
                    break
        else:
            for child in sorted(top.iterdir()):
                entries.append(child.name + ("/" if child.is_dir() else ""))
                if len(entries) >= args.max_entries:
                    break
        output = cap_output("\n".join(entries), ctx.output_cap)
        return ToolResult(ok=True, output=output, data=entries)


class GlobArgs(ToolArgs):
    pattern: str = Field(description="Glob like '**/*.py', relative to path.")
    path: str = Field(".", description="Folder to search from.")
    max_entries: int = Field(1000, ge=1, le=100_000, description="Most matches to return.")


class FileGlob(Tool[GlobArgs]):
    name = "file_glob"
    description = "Find files whose paths match a glob pattern (e.g. '**/*.py')."
    risk = Risk.READ
    Args = GlobArgs
    path_fields = ("path",)

    def run(self, args: GlobArgs, ctx: ToolContext) -> ToolResult:
        top = resolve_inside(args.path, ctx.roots)
        if Path(args.pattern).is_absolute() or ".." in Path(args.pattern).parts:
            raise ToolError("the glob pattern must be relative and must not contain '..'.")
        found: list[str] = []
        for path in sorted(top.glob(args.pattern)):
            if any(part in SKIP_DIRS for part in path.relative_to(top).parts):
                continue
            real = path.resolve()
            if not any(real == r or real.is_relative_to(r) for r in ctx.roots):
                continue
            found.append(relative_to_roots(path, ctx.roots))
            if len(found) >= args.max_entries:
                break
        return ToolResult(ok=True, output=cap_output("\n".join(found), ctx.output_cap), data=found)


class GrepArgs(ToolArgs):
    pattern: str = Field(description="Regular expression (Python syntax) to search for.")
    path: str = Field(".", description="File or folder to search.")
    glob: str | None = Field(None, description="Only files whose name matches, e.g. '*.py'.")
    ignore_case: bool = Field(False, description="Match case-insensitively.")
    max_matches: int = Field(200, ge=1, le=100_000, description="Most matching lines to return.")


class FileGrep(Tool[GrepArgs]):
    name = "file_grep"
    description = "Search text files for a regular expression; prints path:line:text."
    risk = Risk.READ
    Args = GrepArgs
    path_fields = ("path",)

    def run(self, args: GrepArgs, ctx: ToolContext) -> ToolResult:
        top = resolve_inside(args.path, ctx.roots)
        if not top.exists():
            raise ToolError(f"{args.path} does not exist.")
        try:
            regex = re.compile(args.pattern, re.IGNORECASE if args.ignore_case else 0)
        except re.error as exc:
            raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}.") from None
        matches: list[dict[str, Any]] = []
        for path in walk_files(top, ctx.roots):
            if args.glob and not fnmatch(path.name, args.glob):
                continue
            try:
                if path.stat().st_size > MAX_READ_BYTES:
                    continue
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary or unreadable files are skipped
            rel = relative_to_roots(path.resolve(), ctx.roots)
            for number, line in enumerate(text.splitlines(), start=1):
                if regex.search(line):
                    matches.append({"path": rel, "line": number, "text": line})
                    if len(matches) >= args.max_matches:
                        break
            if len(matches) >= args.max_matches:
                break
        output = "\n".join(f"{m['path']}:{m['line']}:{m['text']}" for m in matches)
        return ToolResult(ok=True, output=cap_output(output, ctx.output_cap), data=matches)


TOOLS: tuple[Tool[Any], ...] = (FileRead(), FileList(), FileGlob(), FileGrep())
