"""Keeping tool paths inside the workspace roots (``..`` traversal, absolute paths, symlinks).

A path the system could not use is refused before it is touched: a NUL byte, more than
``MAX_PATH`` characters, a name longer than ``MAX_NAME`` bytes, a symlink loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from magray.errors import DeniedError, server_setting

#: the longest path (characters) and file name (UTF-8 bytes) a tool accepts, as on Linux
MAX_PATH = 4096
MAX_NAME = 255


def check_path_text(path: str | Path) -> None:
    """Refuse a path no file system would take (NUL byte, too long, a name too long).

    Raises:
        DeniedError: saying what is wrong with the path.
    """
    text = str(path)
    if "\x00" in text:
        raise DeniedError("the path contains a NUL byte; name the file without it.")
    if len(text) > MAX_PATH:
        raise DeniedError(
            f"the path is {len(text)} characters long, over the limit of {MAX_PATH}; "
            "use a shorter path."
        )
    for name in Path(text).parts:
        if len(name.encode("utf-8", errors="surrogateescape")) > MAX_NAME:
            raise DeniedError(
                f"the name {name[:40]!r}… is longer than {MAX_NAME} bytes; use a shorter name."
            )


def real_path(path: Path) -> Path | None:
    """``path`` with symlinks resolved, or None when it runs into a loop or cannot be read."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        return None


def _inside(path: Path, roots: Sequence[Path]) -> Path | None:
    for root in roots:
        if path == root or path.is_relative_to(root):
            return root
    return None


def resolve_inside(path: str | Path, roots: Sequence[Path]) -> Path:
    """The real path of ``path`` (relative to the first root) if it lies inside a root.

    Symlinks are resolved before the check, so a link that leads out is refused.

    Raises:
        DeniedError: the path leaves the roots by ``..``, by being absolute elsewhere,
            or through a symlink; or it is not a usable path (``check_path_text``, a
            symlink loop).
    """
    if not roots:
        raise DeniedError(
            "no workspace roots are allowed; ",
            server_setting("pass --root DIR", "add a folder to tools.roots"),
            ".",
        )
    check_path_text(path)
    real_roots = [Path(r).resolve() for r in roots]
    raw = Path(path)
    lexical = raw if raw.is_absolute() else real_roots[0] / raw
    try:
        resolved = lexical.resolve()
    except RuntimeError:
        raise DeniedError(
            f"path {str(path)!r} runs into a symlink loop; remove or fix the link."
        ) from None
    except OSError as exc:
        raise DeniedError(f"path {str(path)!r} cannot be used ({exc.strerror}).") from None
    if _inside(resolved, real_roots) is not None:
        return resolved
    shown = ", ".join(str(r) for r in real_roots)
    if ".." in raw.parts:
        why = "climbs out with '..'"
    elif raw.is_absolute() and _inside(Path(*lexical.parts), real_roots) is None:
        why = "is an absolute path"
    else:
        why = "follows a symlink"
    raise DeniedError(
        f"path {str(path)!r} {why} to {resolved}, outside the workspace roots ({shown}); ",
        server_setting("add the folder with --root", "add the folder to tools.roots"),
        " to allow it.",
    )


def relative_to_roots(path: Path, roots: Sequence[Path]) -> str:
    """``path`` relative to the root holding it, in POSIX form (for globs and output)."""
    root = _inside(path, [Path(r).resolve() for r in roots])
    if root is None:
        return path.as_posix()
    rel = path.relative_to(root).as_posix()
    return rel if rel else "."
