"""Writing a file atomically, and reading the TOML files of a home, in one place.

``write_atomic`` writes a temporary file in the same folder (named for this process, so
two writers never share one), flushes it to disk and renames it over the target: a reader
sees the old file or the new one, never half of either, and a crash leaves the old one.
``atomic_path`` is the same for a file written by other code (a stream, a download, a
library's ``save(path)``): it hands out the temporary path and puts the file in place when
the block ends without an error.
``fsync_file`` and ``fsync_dir`` flush a file, or a folder's entries after a rename.
``locked`` serialises a read-modify-write of one file across threads and processes.
``read_toml`` returns ``{}`` for a missing file and one ``ConfigError`` line for a file that
is not UTF-8 TOML, naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from magray.errors import ConfigError


def temporary_of(path: Path) -> Path:
    """The temporary file this process writes before it replaces ``path``
    (``.NAME.PID.tmp`` beside it; a sweep of killed writers' files matches that name)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def check_replaceable(path: Path) -> None:
    """Refuse to replace ``path`` by a rename unless it is a regular file (or absent).

    A rename over a device, a FIFO or ``/dev/stdout`` would put a plain file in its place
    (as root, ``/dev/null`` itself), and one over a folder fails half-way.

    Raises:
        OSError: (``EINVAL``) ``path`` exists and is not a regular file.
    """
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file, so it is not replaced", str(path))


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; when the block ends without an
    error the file is flushed to disk and renamed over ``path``, else it is removed.

    Raises:
        OSError: ``path`` is not a regular file (see ``check_replaceable``).
    """
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_of(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


@contextlib.contextmanager
def locked(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """Hold the lock of ``path`` (``.NAME.lock`` beside it) while the block reads, changes
    and rewrites it, so two processes changing it at once both keep their change.

    Re-entrant within a thread; a lock that cannot be had (or created) is a ``ConfigError``.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(path.with_name(f".{path.name}.lock"), timeout=timeout, is_singleton=True)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"{path} is being changed by another process; try again in a moment."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path} ({exc.strerror or exc}); check that its folder is writable"
            " and the disk has space."
        ) from None
    try:
        yield
    finally:
        lock.release()


def fsync_file(path: Path) -> None:
    """Flush ``path``'s content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries to disk, so a rename or a new file in it survives a crash."""
    fsync_file(path)


def write_atomic(path: Path, data: str | bytes, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (text is UTF-8, written as is) in one rename; ``mode``
    sets the permissions before any byte is written (0o600 for secrets), else an existing
    file keeps its own. ``path`` must be a regular file or absent (``check_replaceable``)."""
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None and path.exists():
        mode = path.stat().st_mode & 0o777
    tmp = temporary_of(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # in case the temporary file already existed
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def read_toml(
    path: Path, fix: str = "fix or remove the file", *, detail: bool = True
) -> dict[str, Any]:
    """The TOML table in ``path`` (``{}`` when there is no file).

    The error names ``path`` and says ``fix``; with ``detail`` False it leaves out the
    parser's words (for a file of secrets).
    """
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        why = f" ({exc})" if detail else ""
        raise ConfigError(f"{path} is not valid TOML{why}; {fix}.") from None
    except OSError as exc:  # a folder, unreadable, an I/O error
        raise ConfigError(
            f"{path} cannot be read ({exc.strerror or exc}); make it a readable file, or remove it."
        ) from None


def has_toml_comment(text: str) -> bool:
    """Whether the TOML ``text`` holds a comment: a ``#`` outside every string.

    A ``#`` inside a basic (``"..."``), literal (``'...'``) or multi-line string is text,
    not a comment. Malformed text is read as far as it goes.
    """
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "#":
            return True
        if ch in "\"'":
            quote = text[i : i + 3] if text[i : i + 3] == ch * 3 else ch
            i += len(quote)
            while i < n:
                if ch == '"' and text[i] == "\\":
                    i += 2  # an escape in a basic string: \" does not end it
                    continue
                if text.startswith(quote, i):
                    i += len(quote)
                    # a multi-line string may end with up to two more quotes of its own
                    while len(quote) == 3 and i < n and text[i] == ch:
                        i += 1
                    break
                if len(quote) == 1 and text[i] == "\n":
                    break  # an unterminated one-line string ends with its line
                i += 1
            continue
        i += 1
    return False


def _commented(path: Path) -> str | None:
    """The text of ``path`` when it holds comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return text if has_toml_comment(text) else None


def write_toml(path: Path, data: dict[str, Any], *, mode: int | None = None) -> None:
    """``data`` as TOML, written atomically.

    TOML is written from values, so the comments of a hand-edited file cannot be kept: a
    file that has some is first copied to ``NAME.bak`` (same permissions) and a warning
    says where it is.
    """
    import logging

    import tomli_w

    keep: Path | None = None
    try:
        commented = _commented(path)
        if commented is not None:
            keep = path.with_name(path.name + ".bak")
            write_atomic(keep, commented, mode=path.stat().st_mode & 0o777)
        write_atomic(path, tomli_w.dumps(data), mode=mode)
    except OSError as exc:  # a read-only or full disk, a folder in the way
        raise ConfigError(
            f"cannot write {path} ({exc.strerror or exc}); check that its folder is writable"
            " and the disk has space."
        ) from None
    if keep is not None:
        logging.getLogger("magray.fileio").warning(
            "%s had comments, which rewriting it does not keep; the file as it was is in %s.",
            path,
            keep,
        )
