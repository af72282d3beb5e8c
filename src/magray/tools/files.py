"""Read-only file tools: file_read, file_list, file_glob, file_grep (all inside the roots)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult, cap_output
from magray.tools.paths import real_path, relative_to_roots, resolve_inside

SKIP_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv"})
MAX_READ_BYTES = 5_000_000


def read_bytes(path: Path, limit: int = MAX_READ_BYTES) -> bytes:
    """The bytes of a regular file, or a ToolError saying why it cannot be read.

    The file is opened without blocking and checked after opening, so a FIFO, a socket or
    a device is refused, never waited on.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        raise ToolError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise ToolError(f"{path} is a folder; use file_list.") from None
    except OSError as exc:
        raise ToolError(f"{path} cannot be opened ({exc.strerror}).") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{path} is a folder; use file_list.")
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path} is not a regular file (a FIFO, socket or device); refused.")
        if info.st_size > limit:
            raise ToolError(f"{path} is larger than {limit} bytes; read a line range.")
        return fh.read(limit + 1)[:limit]


def read_text(path: Path) -> str:
    """The UTF-8 text of a regular file, or a ToolError saying why it cannot be read."""
    try:
        return read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{path} is not UTF-8 text.") from None


class Walk:
    """A bounded walk under the roots: skips what the policy hides, symlink loops, links
    that leave the roots, VCS/cache folders; stops at the call's timeout.

    ``notes`` collects what was skipped, for the end of the output.
    """

    def __init__(self, tool: str, ctx: ToolContext) -> None:
        self.tool = tool
        self.ctx = ctx
        self.deadline = time.monotonic() + ctx.timeout
        self.loops: list[str] = []
        self.hidden = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ToolError(
                f"{self.tool} took longer than {self.ctx.timeout:g}s; search a smaller folder "
                "or raise --timeout.",
                transient=False,
            )

    def search(self, pattern: Any, line: str) -> bool:
        """Whether the compiled ``regex`` pattern matches in ``line``, within the deadline."""
        try:
            left = max(self.deadline - time.monotonic(), 0.001)
            return pattern.search(line, timeout=left) is not None
        except TimeoutError:
            self.deadline = 0.0
            self.check_time()
            raise

    def visible(self, path: Path) -> bool:
        """Whether ``path`` may be shown: inside the roots, no loop, not hidden by the policy."""
        rel = relative_to_roots(path, self.ctx.roots)
        real = real_path(path)
        if real is None:
            self.loops.append(rel)
            return False
        if not any(real == r or real.is_relative_to(r) for r in self.ctx.roots):
            return False
        hide = self.ctx.path_filter
        if hide is not None and (
            hide.hides(rel) or hide.hides(relative_to_roots(real, self.ctx.roots))
        ):
            self.hidden += 1
            return False
        return True

    def files(self, top: Path) -> Iterator[Path]:
        """Files under ``top`` (sorted), or ``top`` itself when it is a file."""
        if not top.is_dir():
            if self.visible(top):
                yield top
            return
        for dirpath, dirnames, filenames in os.walk(top):
            self.check_time()
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames if d not in SKIP_DIRS and self.visible(here / d)
            )
            for name in sorted(filenames):
                path = here / name
                if self.visible(path):
                    yield path

    def notes(self) -> str:
        out = [f"[skipped {rel}: a symlink loop]" for rel in self.loops[:20]]
        if len(self.loops) > 20:
            out.append(f"[… and {len(self.loops) - 20} more symlink loops]")
        if self.hidden:
            out.append(f"[{self.hidden} path(s) left out by the permission policy]")
        return "\n".join(out)

    def finish(self, lines: list[str]) -> str:
        """The output: ``lines`` then the notes, capped."""
        notes = self.notes()
        text = "\n".join(lines)
        if notes:
            text = f"{text}\n{notes}" if text else notes
        return cap_output(text, self.ctx.output_cap)


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
        walk = Walk(self.name, ctx)
        entries: list[str] = []
        if args.recursive:
            for path in walk.files(top):
                entries.append(path.relative_to(top).as_posix())
                if len(entries) >= args.max_entries:
                    break
        else:
            for child in sorted(top.iterdir()):
                walk.check_time()
                if not walk.visible(child):
                    continue
                entries.append(child.name + ("/" if child.is_dir() else ""))
                if len(entries) >= args.max_entries:
                    break
        return ToolResult(ok=True, output=walk.finish(entries), data=entries)


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
        walk = Walk(self.name, ctx)
        found: list[str] = []
        for path in sorted(top.glob(args.pattern)):
            walk.check_time()
            parents = path.relative_to(top).parents
            if any(part in SKIP_DIRS for part in path.relative_to(top).parts):
                continue
            if not all(walk.visible(top / p) for p in parents if str(p) != "."):
                continue
            if not walk.visible(path):
                continue
            found.append(relative_to_roots(path, ctx.roots))
            if len(found) >= args.max_entries:
                break
        return ToolResult(ok=True, output=walk.finish(found), data=found)


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
        # the ``regex`` engine takes a timeout, so a pattern that backtracks without end
        # (``(a|aa)+$``) is stopped at the call's deadline like the walk itself
        import regex

        try:
            compiled = regex.compile(args.pattern, regex.IGNORECASE if args.ignore_case else 0)
        except regex.error as exc:
            raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}.") from None
        walk = Walk(self.name, ctx)
        matches: list[dict[str, Any]] = []
        for path in walk.files(top):
            walk.check_time()
            if args.glob and not fnmatch(path.name, args.glob):
                continue
            try:
                text = read_bytes(path).decode("utf-8")
            except (UnicodeDecodeError, ToolError):
                continue  # binary, large, unreadable or non-regular files are skipped
            rel = relative_to_roots(path.resolve(), ctx.roots)
            for number, line in enumerate(text.splitlines(), start=1):
                if walk.search(compiled, line):
                    matches.append({"path": rel, "line": number, "text": line})
                    if len(matches) >= args.max_matches:
                        break
            if len(matches) >= args.max_matches:
                break
        lines = [f"{m['path']}:{m['line']}:{m['text']}" for m in matches]
        return ToolResult(ok=True, output=walk.finish(lines), data=matches)


TOOLS: tuple[Tool[Any], ...] = (FileRead(), FileList(), FileGlob(), FileGrep())
