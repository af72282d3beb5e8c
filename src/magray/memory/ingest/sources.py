"""Finding the files ``magray ingest`` reads, and reading them as text.

``walk`` yields one ``SourceFile`` per readable text file and one ``Skipped``
per file or folder it leaves out, with the reason, so the CLI can report both.

Rules:

- A file named explicitly is read unless it is binary, too large or not text;
  ``.gitignore`` and the hidden-file rule do not apply to it.
- A folder is walked recursively in sorted order (by name, depth first). Every
  ``.gitignore`` on the way applies to its own subtree with git's semantics
  (deeper files win, ``!negation`` re-includes, an ignored folder is not entered);
  ``.gitignore`` files between ``root`` and an explicitly named folder apply too.
  A pattern git would not accept (such as a lone backslash) is left out with a warning naming
  the file and line; the rest of that ``.gitignore`` still applies.
  Version-control, dependency, cache and build folders (``ALWAYS_SKIPPED``) and
  hidden entries (dotfiles such as ``.env``, which often hold secrets) are left
  out unless ``include_hidden`` is set. Each left-out entry is reported once, as
  "ignored"; the contents of a left-out folder are not listed.
- Symbolic links found while walking are followed only when their target lies
  inside one of the folders named explicitly; otherwise they are reported as
  "symlink outside roots". Each real folder is entered once and each real file
  read once, so link loops end and duplicates vanish silently. A link whose
  target does not exist is reported as "broken symlink", one that points back to
  itself through links as "symlink loop", both under the link's own path.
- Decoding: UTF-8 (a BOM is stripped), or UTF-16 when the file starts with a
  UTF-16 BOM. A file with a NUL byte anywhere (a NUL character, for UTF-16) or a
  known binary extension is "binary". A file where at most 1% of the bytes are not valid
  UTF-8 is kept with those bytes replaced by U+FFFD (a stray Latin-1 byte in a
  licence header should not lose the file); above that it is "not utf-8 decodable".
"""

from __future__ import annotations

import codecs
import errno
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from pathspec import GitIgnoreSpec

from magray.errors import NotFoundError
from magray.hashing import content_hash

ALWAYS_SKIPPED = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".mypy_cache"}
    | {".pytest_cache", ".ruff_cache", "dist", "build", ".tox", ".idea"}
)

_BINARY = """
.png .jpg .jpeg .gif .bmp .ico .icns .webp .tif .tiff .psd .heic
.avif .svgz .mp3 .wav .flac .ogg .m4a .aac .mp4 .m4v .mov .avi
.mkv .webm .zip .gz .tgz .bz2 .xz .zst .lz4 .7z .rar .tar
.jar .war .whl .egg .deb .rpm .iso .dmg .pyc .pyo .pyd .so
.dylib .dll .exe .o .a .lib .obj .class .wasm .bin .dat .onnx
.gguf .ggml .safetensors .pt .pth .ckpt .pkl .pickle .npy .npz .h5 .hdf5
.parquet .arrow .feather .tflite .pb .usearch .db .sqlite .sqlite3 .db-wal .db-shm .sqlite-wal
.sqlite-shm .pdf .doc .docx .xls .xlsx .ppt .pptx .odt .ods .odp .epub
.ttf .otf .woff .woff2 .eot
"""
BINARY_SUFFIXES = frozenset(_BINARY.split())

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown", ".mdx", ".mkd", ".mdown"})

_LANGUAGES = {
    "python": ".py .pyi .pyw",
    "javascript": ".js .mjs .cjs .jsx",
    "typescript": ".ts .tsx .mts .cts",
    "go": ".go",
    "rust": ".rs",
    "c": ".c .h",
    "cpp": ".cc .cpp .cxx .hpp .hh .hxx",
    "csharp": ".cs",
    "java": ".java",
    "kotlin": ".kt .kts",
    "scala": ".scala",
    "swift": ".swift",
    "ruby": ".rb",
    "php": ".php",
    "lua": ".lua",
    "r": ".r",
    "julia": ".jl",
    "haskell": ".hs",
    "ocaml": ".ml .mli",
    "elixir": ".ex .exs",
    "erlang": ".erl",
    "clojure": ".clj .cljs",
    "dart": ".dart",
    "zig": ".zig",
    "shell": ".sh .bash .zsh .fish",
    "powershell": ".ps1",
    "sql": ".sql",
    "html": ".html .htm",
    "css": ".css .scss .sass .less",
    "vue": ".vue",
    "svelte": ".svelte",
    "json": ".json .jsonc",
    "yaml": ".yaml .yml",
    "toml": ".toml",
    "xml": ".xml",
    "ini": ".ini .cfg",
    "protobuf": ".proto",
    "terraform": ".tf",
    "cmake": ".cmake",
    "make": ".mk",
}
CODE_LANGUAGES = {
    suffix: language for language, suffixes in _LANGUAGES.items() for suffix in suffixes.split()
}
CODE_FILENAMES = {
    "Makefile": "make",
    "GNUmakefile": "make",
    "Dockerfile": "dockerfile",
    "CMakeLists.txt": "cmake",
    "Justfile": "just",
    "Rakefile": "ruby",
    "Gemfile": "ruby",
}

log = logging.getLogger("magray")

_MAX_BAD_FRACTION = 0.01
_ESCAPED = re.compile("[\udc80-\udcff]")


class SkipReason(StrEnum):
    """Why ``walk`` left a path out."""

    BINARY = "binary"
    TOO_LARGE = "too large"
    IGNORED = "ignored"
    NOT_UTF8 = "not utf-8 decodable"
    UNREADABLE = "unreadable"
    NOT_REGULAR = "not a regular file (a pipe, device or socket)"
    OUTSIDE_ROOTS = "symlink outside roots"
    BROKEN_LINK = "broken symlink (its target does not exist)"
    LINK_LOOP = "symlink loop"


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A text file to ingest.

    Attributes:
        path: absolute path with symlinks resolved.
        uri: posix path relative to the walk root when under it, else absolute
            (symlinks resolved first when the target lies under the root).
            For display: ``ingest`` stores a file under ``path``, never under ``uri``.
        text: the decoded text (BOM removed, line endings untouched).
        content_hash: ``records.content_hash(text)``.
        kind: "markdown", "code" or "text" (what ``chunking.chunk`` takes).
        language: the code language ("python", …), None for markdown and text.
        size: the file's size in bytes.
    """

    path: Path
    uri: str
    text: str
    content_hash: str
    kind: str
    language: str | None
    size: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file or folder ``walk`` left out. ``path`` is absolute, as walked."""

    path: Path
    uri: str
    reason: SkipReason


def classify(path: Path) -> tuple[str, str | None]:
    """The (kind, language) a file's name implies."""
    suffix = path.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown", None
    if path.name in CODE_FILENAMES:
        return "code", CODE_FILENAMES[path.name]
    if suffix in CODE_LANGUAGES:
        return "code", CODE_LANGUAGES[suffix]
    return "text", None


def decode(data: bytes) -> str | None:
    """Decode file bytes as described in the module docstring; None if not text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None
        return None if "\0" in text else text
    if b"\0" in data:
        return None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    text, bad = _ESCAPED.subn("\ufffd", text)
    return text if bad <= len(data) * _MAX_BAD_FRACTION else None


def _binary(data: bytes) -> bool:
    """Whether undecodable ``data`` is binary (holds NUL) rather than text in another encoding."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return "\0" in data.decode("utf-16")
        except UnicodeDecodeError:
            return False
    return b"\0" in data


def _gitignore_spec(gitignore: Path, lines: list[str]) -> GitIgnoreSpec:
    """The patterns of one ``.gitignore``; an invalid one is left out with a warning."""
    try:
        return GitIgnoreSpec.from_lines(lines)
    except ValueError:
        pass
    good: list[str] = []
    for number, line in enumerate(lines, 1):
        try:
            GitIgnoreSpec.from_lines([line])
        except ValueError:
            log.warning(
                "%s line %d: %r is not a valid pattern; it is left out.", gitignore, number, line
            )
            continue
        good.append(line)
    return GitIgnoreSpec.from_lines(good)


def read_source(path: Path, *, uri: str, max_bytes: int = 2_000_000) -> SourceFile | Skipped:
    """Read one file as a ``SourceFile``, or say why it cannot be ingested."""
    real = path.resolve()
    if real.suffix.lower() in BINARY_SUFFIXES or path.suffix.lower() in BINARY_SUFFIXES:
        return Skipped(path, uri, SkipReason.BINARY)
    try:
        if not real.is_file():
            return Skipped(
                path, uri, SkipReason.NOT_REGULAR if real.exists() else SkipReason.UNREADABLE
            )
        if real.stat().st_size > max_bytes:
            return Skipped(path, uri, SkipReason.TOO_LARGE)
        with real.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError:
        return Skipped(path, uri, SkipReason.UNREADABLE)
    if len(data) > max_bytes:
        return Skipped(path, uri, SkipReason.TOO_LARGE)
    text = decode(data)
    if text is None:
        return Skipped(path, uri, SkipReason.BINARY if _binary(data) else SkipReason.NOT_UTF8)
    kind, language = classify(path)
    if kind == "text" and real.name != path.name:
        kind, language = classify(real)
    return SourceFile(real, uri, text, content_hash(text), kind, language, len(data))


@dataclass(frozen=True, slots=True)
class _Rules:
    """The .gitignore files in force: (folder, spec), outermost first."""

    specs: tuple[tuple[Path, GitIgnoreSpec], ...] = ()

    def entering(self, folder: Path) -> _Rules:
        gitignore = folder / ".gitignore"
        try:
            lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return self
        return _Rules((*self.specs, (folder, _gitignore_spec(gitignore, lines))))

    def ignores(self, path: Path, is_dir: bool) -> bool:
        ignored = False
        for folder, spec in self.specs:
            rel = path.relative_to(folder).as_posix() + ("/" if is_dir else "")
            include = spec.check_file(rel).include
            if include is not None:
                ignored = include
        return ignored


@dataclass(slots=True)
class _Walk:
    root: Path
    real_root: Path
    roots: tuple[Path, ...]
    max_bytes: int
    include_hidden: bool
    seen_dirs: set[Path] = field(default_factory=set)
    seen_files: set[Path] = field(default_factory=set)

    def uri(self, path: Path) -> str:
        """The real path under the root, else the path as walked under it, else absolute.

        Preferring the real path gives a file the same uri whichever link reached it;
        a link that leads nowhere (broken or looping) is shown as the link itself.
        """
        if path.is_symlink() and not os.path.exists(path):
            return _shown_as_walked(path, self.root)
        real = Path(os.path.realpath(path))  # unlike Path.resolve, never raises on a loop
        if real.is_relative_to(self.real_root):
            return real.relative_to(self.real_root).as_posix()
        if path.is_relative_to(self.root):
            return path.relative_to(self.root).as_posix()
        return real.as_posix()

    def hidden(self, name: str) -> bool:
        """Whether a dot-entry is left out."""
        return name.startswith(".") and not self.include_hidden

    def file(self, path: Path) -> Iterator[SourceFile | Skipped]:
        real = path.resolve()
        if real not in self.seen_files:
            self.seen_files.add(real)
            yield read_source(path, uri=self.uri(path), max_bytes=self.max_bytes)

    def folder(self, path: Path, rules: _Rules) -> Iterator[SourceFile | Skipped]:
        real = path.resolve()
        if real in self.seen_dirs:
            return
        self.seen_dirs.add(real)
        rules = rules.entering(path)
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            yield Skipped(path, self.uri(path), SkipReason.UNREADABLE)
            return
        for entry in entries:
            child = path / entry.name
            try:
                is_link = entry.is_symlink()
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                reason = _dead_link_reason(child) if child.is_symlink() else SkipReason.UNREADABLE
                if self.hidden(entry.name) or rules.ignores(child, False):
                    reason = SkipReason.IGNORED
                yield Skipped(child, self.uri(child), reason)
                continue
            hidden = self.hidden(entry.name)
            if (is_dir and entry.name in ALWAYS_SKIPPED) or hidden or rules.ignores(child, is_dir):
                yield Skipped(child, self.uri(child), SkipReason.IGNORED)
                continue
            if is_link:
                try:
                    target = child.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield Skipped(child, self.uri(child), _dead_link_reason(child))
                    continue
                if not any(target.is_relative_to(r) for r in self.roots):
                    yield Skipped(child, self.uri(child), SkipReason.OUTSIDE_ROOTS)
                    continue
            if is_dir:
                yield from self.folder(child, rules)
            elif is_file:
                yield from self.file(child)
            else:
                yield Skipped(child, self.uri(child), SkipReason.UNREADABLE)

    def ancestor_rules(self, folder: Path) -> _Rules:
        rules = _Rules()
        if folder.is_relative_to(self.root) and folder != self.root:
            for ancestor in reversed(folder.parents):
                if ancestor.is_relative_to(self.root):
                    rules = rules.entering(ancestor)
        return rules


def _shown_as_walked(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when under it, else absolute (no link resolved)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _dead_link_reason(link: Path) -> SkipReason:
    """Why a symbolic link that does not resolve cannot be read: broken, looping or other."""
    try:
        link.resolve(strict=True)
    except RuntimeError:
        return SkipReason.LINK_LOOP
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SkipReason.LINK_LOOP
        if exc.errno == errno.ENOENT:
            return SkipReason.BROKEN_LINK
    return SkipReason.UNREADABLE


def walk(
    paths: Sequence[Path],
    *,
    root: Path | None = None,
    max_bytes: int = 2_000_000,
    include_hidden: bool = False,
) -> Iterator[SourceFile | Skipped]:
    """Yield every file to ingest under ``paths``, and every path left out.

    Args:
        paths: files and folders, as the user named them. Sorted before walking,
            so the order of the arguments does not change the output.
        root: ``SourceFile.uri`` is relative to this folder; default: the
            current working directory.
        max_bytes: larger files are skipped as "too large".
        include_hidden: also walk dotfiles and dot-folders (``ALWAYS_SKIPPED``
            folders stay skipped).

    Raises:
        NotFoundError: a path does not exist (checked before anything is yielded).
    """
    base = Path(os.path.abspath(root if root is not None else Path.cwd()))
    absolute = sorted({Path(os.path.abspath(p)) for p in paths})
    for path in absolute:
        if path.is_symlink() and not os.path.exists(path):
            what = _dead_link_reason(path)
            target = os.readlink(path)
            if what is SkipReason.LINK_LOOP:
                raise NotFoundError(
                    f"{path} is a symbolic link that loops back on itself (through {target});"
                    " point it at a real file or folder, or leave it out."
                )
            raise NotFoundError(
                f"{path} is a broken symbolic link: its target {target} does not exist;"
                " fix or remove the link, or leave it out."
            )
        if not path.exists():
            raise NotFoundError(f"no such file or folder: {path}; check the path and try again.")
    roots = tuple(p.resolve() for p in absolute if p.is_dir())
    state = _Walk(base, base.resolve(), roots, max_bytes, include_hidden)
    return _walk(state, absolute)


def _walk(state: _Walk, paths: list[Path]) -> Iterator[SourceFile | Skipped]:
    for path in paths:
        if path.is_dir():
            yield from state.folder(path, state.ancestor_rules(path))
        else:
            yield from state.file(path)
