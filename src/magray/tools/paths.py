"""Keeping tool paths inside the workspace roots (``..`` traversal, absolute paths, symlinks)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from magray.errors import DeniedError


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
            or through a symlink.
    """
    if not roots:
        raise DeniedError("no workspace roots are allowed; pass --root DIR.")
    real_roots = [Path(r).resolve() for r in roots]
    raw = Path(path)
    lexical = raw if raw.is_absolute() else real_roots[0] / raw
    resolved = lexical.resolve()
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
        f"path {str(path)!r} {why} to {resolved}, outside the workspace roots ({shown}); "
        "add the folder with --root to allow it."
    )


def relative_to_roots(path: Path, roots: Sequence[Path]) -> str:
    """``path`` relative to the root holding it, in POSIX form (for globs and output)."""
    root = _inside(path, [Path(r).resolve() for r in roots])
    if root is None:
        return path.as_posix()
    rel = path.relative_to(root).as_posix()
    return rel if rel else "."
