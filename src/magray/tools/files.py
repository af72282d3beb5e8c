"""Read-only file tools: file_read, file_list, file_glob, file_grep (all inside the roots)."""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import re
import stat
import time
from collections.abc import Iterator
from fnmatch import fnmatch, fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError, server_setting
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
        #: MAGRAY's secrets (``ToolContext.secret_files``), never shown
        self.secrets = ctx.secrets()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ToolError(
                f"{self.tool} took longer than {self.ctx.timeout:g}s; search a smaller folder or ",
                server_setting("raise --timeout", "raise tools.timeout"),
                ".",
                transient=False,
            )

    def find(self, pattern: Any, text: str, pos: int = 0) -> Any:
        """The first match of the compiled ``regex`` pattern in ``text`` from ``pos``, or
        None; a ToolError when the deadline passes first."""
        try:
            left = max(self.deadline - time.monotonic(), 0.001)
            return pattern.search(text, pos, timeout=left)
        except TimeoutError:
            self.deadline = 0.0
            self.check_time()
            raise

    def rel(self, path: Path) -> str:
        """``path`` relative to the (resolved) root holding it."""
        for root in self.ctx.roots:
            if path == root or path.is_relative_to(root):
                return path.relative_to(root).as_posix() or "."
        return path.as_posix()

    def visible(self, path: Path, parent_real: Path | None = None) -> bool:
        """Whether ``path`` may be shown: inside the roots, no loop, not hidden by the policy.

        ``parent_real``: the real path of its folder when known (saves resolving it).
        """
        return self._visible(path, self._real(path, parent_real))

    def _real(self, path: Path, parent_real: Path | None) -> Path | None:
        if parent_real is not None and not os.path.islink(path):
            return parent_real / path.name
        return real_path(path)

    def _visible(self, path: Path, real: Path | None) -> bool:
        rel = self.rel(path)
        if real is None:
            self.loops.append(rel)
            return False
        if not any(real == r or real.is_relative_to(r) for r in self.ctx.roots):
            return False
        if self.secrets.holds(real):
            self.hidden += 1
            return False
        hide = self.ctx.path_filter
        if hide is not None and (hide.hides(rel) or (real != path and hide.hides(self.rel(real)))):
            self.hidden += 1
            return False
        return True

    def entries(self, top: Path, max_depth: int | None = None) -> Iterator[tuple[Path, bool]]:
        """``(path, is_folder)`` for what lies under the folder ``top``, folders before their
        contents, names sorted; ``max_depth`` limits how many levels down it goes."""
        reals: dict[str, Path | None] = {str(top): real_path(top)}
        for dirpath, dirnames, filenames in os.walk(top):
            self.check_time()
            here = Path(dirpath)
            here_real = reals.pop(dirpath, None)
            kept = []
            for name in sorted(dirnames):
                real = self._real(here / name, here_real)
                if name not in SKIP_DIRS and self._visible(here / name, real):
                    kept.append(name)
                    reals[os.path.join(dirpath, name)] = real
            dirnames[:] = kept
            for name in kept:
                yield here / name, True
            if max_depth is not None and len(here.relative_to(top).parts) + 1 >= max_depth:
                dirnames.clear()
            for name in sorted(filenames):
                path = here / name
                if self.visible(path, here_real):
                    yield path, False

    def files(self, top: Path) -> Iterator[Path]:
        """Files under ``top`` (sorted), or ``top`` itself when it is a file."""
        if not top.is_dir():
            if self.visible(top):
                yield top
            return
        for path, is_dir in self.entries(top):
            if not is_dir:
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
        pattern = [p for p in args.pattern.split("/") if p not in ("", ".")]
        if not pattern:
            raise ToolError("the glob pattern is empty; try '**/*.py'.")
        walk = Walk(self.name, ctx)
        # a literal start (``src/**/*.py``) is walked from there; no ``**``: a fixed depth
        fixed = 0
        while fixed < len(pattern) - 1 and not _MAGIC.search(pattern[fixed]):
            fixed += 1
        base = top.joinpath(*pattern[:fixed])
        depth = None if "**" in pattern else len(pattern) - fixed
        found: list[str] = []
        if base.is_dir() and (base == top or walk.visible(base)):
            for path, _ in walk.entries(base, depth):
                if glob_match(tuple(pattern), path.relative_to(top).parts):
                    found.append(relative_to_roots(path, ctx.roots))
        found.sort()
        del found[args.max_entries :]
        return ToolResult(ok=True, output=walk.finish(found), data=found)


_MAGIC = re.compile(r"[*?\[]")


@functools.lru_cache(maxsize=4096)
def glob_match(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    """Whether path ``parts`` match glob ``pattern`` parts: ``**`` is any number of folders,
    ``*``, ``?`` and ``[...]`` match within one name (as ``pathlib`` globs do)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(glob_match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and glob_match(pattern[1:], parts[1:])


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

        flags = regex.IGNORECASE if args.ignore_case else 0
        try:
            compiled = regex.compile(args.pattern, flags)
        except regex.error as exc:
            raise ToolError(f"invalid regular expression {args.pattern!r}: {exc}.") from None
        # one search over a whole file first (a file with no match costs one call); only
        # for patterns that match a line's span the same inside the file as on its own
        whole = None
        if not any(token in args.pattern for token in _LINE_BOUND):
            whole = regex.compile(args.pattern, flags | regex.MULTILINE)
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
            rel = walk.rel(path if not os.path.islink(path) else path.resolve())
            lines = text.splitlines()
            for index in _matching_lines(walk, compiled, whole, lines):
                matches.append({"path": rel, "line": index + 1, "text": lines[index]})
                if len(matches) >= args.max_matches:
                    break
            if len(matches) >= args.max_matches:
                break
        shown = [f"{m['path']}:{m['line']}:{m['text']}" for m in matches]
        return ToolResult(ok=True, output=walk.finish(shown), data=matches)


def _matching_lines(walk: Walk, line_re: Any, whole_re: Any, lines: list[str]) -> Iterator[int]:
    """Indexes of the lines ``line_re`` matches, in order.

    With ``whole_re`` (the pattern in MULTILINE mode) the file is searched as one text and
    only the line each match starts in is tried on its own; the next search starts at the
    following line, so a match that runs on cannot hide a later line's match.
    """
    if whole_re is None:
        yield from (i for i, line in enumerate(lines) if walk.find(line_re, line) is not None)
        return
    if not lines:
        return
    text = "\n".join(lines)
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    pos = 0
    while (found := walk.find(whole_re, text, pos)) is not None:
        index = bisect.bisect_right(starts, found.start()) - 1
        if walk.find(line_re, lines[index]) is not None:
            yield index
        if index + 1 >= len(lines):
            return
        pos = starts[index + 1]


#: pattern parts that see past a line's ends (string anchors, lookarounds): such patterns
#: are matched line by line only
_LINE_BOUND = ("\\A", "\\Z", "\\z", "\\G", "(?=", "(?!", "(?<=", "(?<!")


TOOLS: tuple[Tool[Any], ...] = (FileRead(), FileList(), FileGlob(), FileGrep())
