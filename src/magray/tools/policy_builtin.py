"""Built-in deny rules: they hold under ``--yes`` and over any allow rule.

Each has a name; ``policy.toml`` can switch one off by name
(``builtin_exceptions = ["git-metadata"]``) or all of them (``builtin_denies = false``).
Nothing else removes them.

- ``git-metadata``: writes, moves and deletes of paths inside any ``.git`` folder (a
  hook or ``core.fsmonitor`` written there runs code), moves of folders holding one, and
  commands whose working folder is inside one.
- ``rm-recursive-root``: a recursive ``rm`` of ``/``, the home folder, a workspace root
  or a folder above one (``rm -rf /``, ``rm -fr ~``, ``rm -r --no-preserve-root /``).
- ``mkfs``: making a file system (``mkfs``, ``mkfs.*``, ``mke2fs``).
- ``dd-device``: ``dd`` writing to a device (``of=/dev/…``; ``/dev/null`` is fine).
- ``fork-bomb``: a shell function that pipes itself into itself in the background.
- ``chmod-recursive-root``: ``chmod``/``chown``/``chgrp -R`` on ``/`` or the home folder.

Commands are looked at through wrappers (``sudo``, ``env``, ``nice``, ``timeout``, …)
and inside ``sh -c``/``bash -c`` scripts, split at ``;``, ``&&``, ``||``, ``|`` and ``&``.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

#: checks one call: (relative paths of its path arguments, argv or None, workspace roots,
#: working folder of a command, whether the call writes or runs a command) -> why it is
#: denied, or None
Check = Callable[[list[str], Sequence[str] | None, Sequence[Path], Path, bool], str | None]


@dataclass(frozen=True, slots=True)
class BuiltinRule:
    """A deny rule that ships with MAGRAY."""

    name: str
    tools: str
    description: str
    check: Check

    def to_dict(self, enabled: bool) -> dict[str, object]:
        return {
            "name": self.name,
            "action": "deny",
            "tools": self.tools,
            "description": self.description,
            "builtin": True,
            "enabled": enabled,
        }

    def describe(self) -> str:
        return f"deny {self.tools} [built-in {self.name}]: {self.description}"


def in_git_dir(rel: str) -> bool:
    """True when the relative path lies in (or is) a ``.git`` folder."""
    return any(part.lower() == ".git" for part in PurePosixPath(rel).parts)


def _git_metadata(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    if not write:
        return None
    for rel in rel_paths:
        if in_git_dir(rel):
            return f"{rel} is inside a .git folder"
    return None


_WRAPPERS = frozenset(
    {"sudo", "doas", "env", "nice", "nohup", "timeout", "command", "exec", "ionice",
     "stdbuf", "time", "busybox", "xargs", "setsid", "chroot", "unbuffer"}
)  # fmt: skip
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "fish", "busybox"})
_OPERATORS = frozenset({";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"})


def _program(word: str) -> str:
    return PurePosixPath(word).name


def _strip_wrappers(argv: list[str]) -> list[str]:
    """``argv`` without leading ``sudo``/``env VAR=x``/``timeout 5``/… wrappers."""
    i = 0
    while i < len(argv):
        name = _program(argv[i])
        if name not in _WRAPPERS:
            break
        i += 1
        while i < len(argv) and (
            argv[i].startswith("-") or "=" in argv[i] or re.fullmatch(r"[\d.]+[smhd]?", argv[i])
        ):
            i += 1
    return argv[i:]


def _simple_commands(argv: Sequence[str], depth: int = 0) -> list[list[str]]:
    """The commands ``argv`` may run: itself, every tail of it that starts at a word (so a
    wrapper's options, ``xargs`` or ``find -exec`` do not hide a program), and what it runs
    inside ``sh -c SCRIPT`` or ``eval`` (a few levels deep)."""
    words = list(argv)
    if not words:
        return []
    # ``git rm -r --cached .`` is git's own subcommand, not the rm program
    found = [words[i:] for i in range(len(words)) if i == 0 or _program(words[i - 1]) != "git"]
    head = _strip_wrappers(words)
    if depth < 3 and head:
        scripts: list[str] = []
        if _program(head[0]) in _SHELLS:
            scripts = [head[i + 1] for i, w in enumerate(head[:-1]) if re.fullmatch(r"-\w*c", w)]
        elif head[0] == "eval":
            scripts = [" ".join(head[1:])]
        for script in scripts:
            for part in _split_script(script):
                found.extend(_simple_commands(part, depth + 1))
    return found


def _split_script(script: str) -> list[list[str]]:
    lexer = shlex.shlex(script.replace("\n", " ; "), posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    parts: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _OPERATORS or set(token) <= set(";&|()"):
                parts.append([])
            else:
                parts[-1].append(token)
    except ValueError:
        parts.append(script.split())
    return [p for p in parts if p]


def _flags(words: list[str]) -> tuple[set[str], list[str]]:
    """Short letters and long flags, and the operands (everything after ``--`` too)."""
    flags: set[str] = set()
    operands: list[str] = []
    ended = False
    for word in words:
        if ended or not word.startswith("-") or word == "-":
            operands.append(word)
        elif word == "--":
            ended = True
        elif word.startswith("--"):
            flags.add(word.split("=", 1)[0])
        else:
            flags.update(word[1:])
    return flags, operands


def _home() -> Path:
    return Path(os.path.expanduser("~")).resolve()


def _target(word: str, cwd: Path) -> Path | None:
    """The folder an operand names (``~``, ``$HOME``, trailing ``/*``); None if unclear."""
    text = word
    for home in ("$HOME", "${HOME}"):
        if text == home or text.startswith(home + "/"):
            text = "~" + text[len(home) :]
    while text.endswith(("/*", "/.*")) or text in ("*", ".*"):
        text = text.rsplit("*", 1)[0].rstrip(".").rstrip("/") or ("/" if word[0] == "/" else ".")
    path = Path(os.path.expanduser(text)) if text.startswith("~") else Path(text)
    if not path.is_absolute():
        path = cwd / path
    return Path("/" + os.path.normpath(path).lstrip("/"))


def _covers(target: Path, protected: Sequence[Path]) -> bool:
    """True when ``target`` (as written, or with its symlinks resolved) is one of
    ``protected`` or a folder above one."""
    real = Path(os.path.realpath(target))
    return any(t == p or p.is_relative_to(t) for t in (target, real) for p in protected)


def _recursive(flags: set[str]) -> bool:
    return bool({"r", "R", "--recursive"} & flags)


def _destructive(
    argv: Sequence[str] | None,
    cwd: Path,
    programs: Callable[[str], bool],
    needs_recursive: bool,
    protected: Sequence[Path],
) -> str | None:
    if argv is None:
        return None
    for words in _simple_commands(argv):
        if not programs(_program(words[0])):
            continue
        flags, operands = _flags(words[1:])
        if needs_recursive and not _recursive(flags):
            continue
        for word in operands:
            target = _target(word, cwd)
            if target is not None and _covers(target, protected):
                return f"`{shlex.join(words)}` would reach {target}"
    return None


def _rm_root(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    protected = [Path("/"), _home(), *roots]
    return _destructive(argv, cwd, lambda p: p == "rm", True, protected)


def _chmod_root(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    def is_chmod(p: str) -> bool:
        return p in ("chmod", "chown", "chgrp")

    return _destructive(argv, cwd, is_chmod, True, [Path("/"), _home()])


def _mkfs(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    for words in _simple_commands(argv or []):
        name = _program(words[0])
        if name.startswith("mkfs") or name == "mke2fs":
            return f"`{shlex.join(words)}` makes a file system"
    return None


_HARMLESS_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/fd/", "/dev/tty")


def _dd_device(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    for words in _simple_commands(argv or []):
        if _program(words[0]) != "dd":
            continue
        for word in words[1:]:
            if word.startswith("of="):
                dest = os.path.normpath(word[3:])
                if dest.startswith("/dev/") and not dest.startswith(_HARMLESS_DEVICES):
                    return f"`{shlex.join(words)}` writes to the device {dest}"
    return None


_FORK_BOMB = re.compile(r"(?:function\s+)?([\w:.]+)\s*(?:\(\s*\))?\s*\{[^}]*?\1\s*\|\s*&?\s*\1\s*&")


def _fork_bomb(
    rel_paths: list[str], argv: Sequence[str] | None, roots: Sequence[Path], cwd: Path, write: bool
) -> str | None:
    text = " ".join(argv or [])
    return "the command is a fork bomb" if _FORK_BOMB.search(text) else None


BUILTIN_RULES: tuple[BuiltinRule, ...] = (
    BuiltinRule(
        "git-metadata",
        "write tools",
        "writes, moves and deletes inside any .git folder, commands run from one",
        _git_metadata,
    ),
    BuiltinRule(
        "rm-recursive-root",
        "commands",
        "recursive rm of /, the home folder, a workspace root or a folder above one",
        _rm_root,
    ),
    BuiltinRule("mkfs", "commands", "making a file system (mkfs, mkfs.*, mke2fs)", _mkfs),
    BuiltinRule("dd-device", "commands", "dd writing to a device (of=/dev/...)", _dd_device),
    BuiltinRule("fork-bomb", "commands", "fork bombs such as :(){ :|:& };:", _fork_bomb),
    BuiltinRule(
        "chmod-recursive-root",
        "commands",
        "chmod, chown or chgrp -R on / or the home folder",
        _chmod_root,
    ),
)

BUILTIN_NAMES = frozenset(r.name for r in BUILTIN_RULES)
