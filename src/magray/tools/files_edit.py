"""File tools that change things: file_write, file_edit, file_move, file_delete.

Writes are atomic (a temporary file in the same folder, then ``os.replace``), and
``preview`` shows the unified diff a write or edit would make.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

from pydantic import Field

from magray.errors import ToolError
from magray.fileio import write_atomic
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.files import read_text
from magray.tools.paths import relative_to_roots, resolve_inside


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (keeping its mode)."""
    write_atomic(path, text)


def unified_diff(before: str, after: str, name: str) -> str:
    """The unified diff from ``before`` to ``after`` (empty when nothing changes)."""
    diff = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)


def _current(path: Path) -> str:
    return read_text(path) if path.exists() else ""


class WriteArgs(ToolArgs):
    path: str = Field(description="File to create or overwrite.")
    content: str = Field(description="The whole new content.")


class FileWrite(Tool[WriteArgs]):
    name = "file_write"
    description = "Create or overwrite a text file with the given content (atomic)."
    risk = Risk.WRITE
    Args = WriteArgs
    path_fields = ("path",)

    def preview(self, args: WriteArgs, ctx: ToolContext) -> str:
        path = resolve_inside(args.path, ctx.roots)
        name = relative_to_roots(path, ctx.roots)
        return unified_diff(_current(path), args.content, name) or f"{name}: no change"

    def run(self, args: WriteArgs, ctx: ToolContext) -> ToolResult:
        path = resolve_inside(args.path, ctx.roots)
        if path.is_dir():
            raise ToolError(f"{args.path} is a folder.")
        atomic_write(path, args.content)
        name = relative_to_roots(path, ctx.roots)
        size = len(args.content.encode("utf-8"))
        return ToolResult(ok=True, output=f"wrote {size} bytes to {name}", data={"path": name})


class EditArgs(ToolArgs):
    path: str = Field(description="File to edit.")
    search: str = Field(min_length=1, description="Exact text to find; must occur exactly once.")
    replace: str = Field(description="Text to put in its place.")


class FileEdit(Tool[EditArgs]):
    name = "file_edit"
    description = "Replace one exact occurrence of `search` with `replace` in a text file."
    risk = Risk.WRITE
    Args = EditArgs
    path_fields = ("path",)

    def _edited(self, args: EditArgs, path: Path) -> tuple[str, str]:
        before = read_text(path)
        count = before.count(args.search)
        if count != 1:
            hint = (
                "include more surrounding text to make it unique"
                if count
                else "copy the text exactly as it is in the file"
            )
            raise ToolError(
                f"file_edit: the search text matched {count} times in {args.path}; "
                f"it must match exactly once ({hint})."
            )
        return before, before.replace(args.search, args.replace, 1)

    def preview(self, args: EditArgs, ctx: ToolContext) -> str:
        path = resolve_inside(args.path, ctx.roots)
        before, after = self._edited(args, path)
        return unified_diff(before, after, relative_to_roots(path, ctx.roots))

    def run(self, args: EditArgs, ctx: ToolContext) -> ToolResult:
        path = resolve_inside(args.path, ctx.roots)
        before, after = self._edited(args, path)
        atomic_write(path, after)
        name = relative_to_roots(path, ctx.roots)
        diff = unified_diff(before, after, name)
        return ToolResult(ok=True, output=diff, data={"path": name})


class MoveArgs(ToolArgs):
    src: str = Field(description="File or folder to move.")
    dst: str = Field(description="New path.")
    overwrite: bool = Field(False, description="Replace an existing destination file.")


class FileMove(Tool[MoveArgs]):
    name = "file_move"
    description = "Move or rename a file or folder inside the workspace."
    risk = Risk.WRITE
    Args = MoveArgs
    path_fields = ("src", "dst")
    subtree_fields = ("src",)

    def preview(self, args: MoveArgs, ctx: ToolContext) -> str:
        src = relative_to_roots(resolve_inside(args.src, ctx.roots), ctx.roots)
        dst = relative_to_roots(resolve_inside(args.dst, ctx.roots), ctx.roots)
        return f"move {src} -> {dst}"

    def run(self, args: MoveArgs, ctx: ToolContext) -> ToolResult:
        src = resolve_inside(args.src, ctx.roots)
        dst = resolve_inside(args.dst, ctx.roots)
        if not src.exists():
            raise ToolError(f"{args.src} does not exist.")
        if dst.exists() and (dst.is_dir() or not args.overwrite):
            raise ToolError(f"{args.dst} already exists; pass overwrite=true to replace a file.")
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
        names = [relative_to_roots(p, ctx.roots) for p in (src, dst)]
        data = {"src": names[0], "dst": names[1]}
        return ToolResult(ok=True, output=f"moved {names[0]} -> {names[1]}", data=data)


class DeleteArgs(ToolArgs):
    path: str = Field(description="File (or empty folder) to delete.")


class FileDelete(Tool[DeleteArgs]):
    name = "file_delete"
    description = "Delete a file or an empty folder."
    risk = Risk.WRITE
    Args = DeleteArgs
    path_fields = ("path",)

    def preview(self, args: DeleteArgs, ctx: ToolContext) -> str:
        return f"delete {relative_to_roots(resolve_inside(args.path, ctx.roots), ctx.roots)}"

    def run(self, args: DeleteArgs, ctx: ToolContext) -> ToolResult:
        path = resolve_inside(args.path, ctx.roots)
        if path in ctx.roots:
            raise ToolError("a workspace root cannot be deleted.")
        if not path.exists():
            raise ToolError(f"{args.path} does not exist.")
        try:
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink()
        except OSError as exc:
            raise ToolError(f"cannot delete {args.path}: {exc.strerror}.") from None
        name = relative_to_roots(path, ctx.roots)
        return ToolResult(ok=True, output=f"deleted {name}", data={"path": name})


TOOLS: tuple[Tool[Any], ...] = (FileWrite(), FileEdit(), FileMove(), FileDelete())
