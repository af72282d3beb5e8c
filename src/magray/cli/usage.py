"""Command-line usage errors as one sentence: what is wrong, and what to run to see the usage.

Typer (through its bundled click) prints a usage error as a three-line box: the usage line,
a "Try --help" line and the message. MAGRAY prints one line instead, in the same shape as
every other error, and keeps exit code 2::

    error: no such option --foo for `magray memory search`; run `magray memory search --help`
    for its options.

:class:`magray.cli.app.MagrayGroup` calls :func:`usage_line` for every usage error raised
while parsing or dispatching a command, so every command gets it without its own code.
"""

from __future__ import annotations

import re
from typing import Any

from typer._click import exceptions as click_errors

_NO_COMMAND = re.compile(r"No such command (?P<name>.+?)\.(?: Did you mean (?P<hint>.+)\?)?$")
_EXTRA = re.compile(r"Got unexpected extra argument(?:s|\(s\))? \((?P<args>.*)\)$", re.DOTALL)
_NEGATIVE = re.compile(r"-\.?\d")  # -1, -0.5, -.5: a negative number, not an option
_OPTION = re.compile(r"Option '(?P<name>[^']+)' (?P<rest>.+?)\.?$", re.DOTALL)
# pydantic's wording for a value typer could not convert, and what MAGRAY says instead
_PYDANTIC = (
    (re.compile(r"Input should be a valid integer"), "takes a whole number"),
    (re.compile(r"Input should be a valid number"), "takes a number"),
    (re.compile(r"Input should be a finite number"), "takes a finite number"),
    (re.compile(r"Input should be a valid boolean"), "takes true or false"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
)


#: words people type for a command, and MAGRAY's names for it (the first that exists wins)
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "remove": ("rm", "forget"),
    "delete": ("rm", "forget"),
    "del": ("rm", "forget"),
    "erase": ("rm", "forget"),
    "rm": ("forget", "remove"),
    "ls": ("list",),
    "new": ("add",),
    "create": ("add",),
    "remember": ("add",),
    "find": ("search",),
    "recall": ("search",),
    "query": ("search", "ask"),
    "view": ("show", "get"),
    "cat": ("show", "get"),
    "get": ("show",),
    "show": ("get",),
    "info": ("show", "get", "stats"),
    "update": ("edit",),
    "modify": ("edit",),
    "rename": ("edit",),
    "finish": ("done",),
    "complete": ("done",),
    "close": ("done",),
    "begin": ("start",),
    "server": ("serve",),
    "status": ("health", "stats"),
    "check": ("verify", "health"),
    "settings": ("config",),
}


def _abbreviates(short: str, word: str) -> bool:
    """Whether ``short`` is a shorthand of ``word``: same first letter, then a subsequence."""
    if len(short) < 2 or len(short) >= len(word) or short[0] != word[0]:
        return False
    letters = iter(word)
    return all(ch in letters for ch in short)


def suggest_commands(typo: str, names: list[str]) -> list[str]:
    """The commands ``typo`` most likely meant: a synonym's MAGRAY name first (``remove`` →
    ``rm``), then a shorthand of it (``rm`` for ``remove``), else the closest spellings."""
    import difflib

    word = typo.strip().lower()
    for name in _SYNONYMS.get(word, ()):
        if name in names:
            return [name]
    short = [name for name in names if _abbreviates(name, word)]
    if short:
        return short[:2]
    return difflib.get_close_matches(word, names, n=2, cutoff=0.6)


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a usage error to print as one line (not a request for help)."""
    return isinstance(exc, click_errors.UsageError) and not isinstance(
        exc, click_errors.NoArgsIsHelpError
    )


def _param_name(param: Any) -> str:
    """How the user writes a parameter: its longest flag, or its argument name in capitals."""
    if param is None:
        return "a value"
    opts = [o for o in getattr(param, "opts", []) or [] if o.startswith("-")]
    if opts:
        return str(max(opts, key=len))
    return str(getattr(param, "human_readable_name", None) or param.name or "a value").upper()


def _sentence_case(text: str) -> str:
    """``text`` without its final full stop, starting lower-case unless it is a name."""
    text = " ".join(text.strip().split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return text


def _bad_value(exc: Any, name: str) -> str:
    detail = str(exc.message).strip()
    for phrase, said in _PYDANTIC:
        found = phrase.match(detail)
        if found:
            return f"{name} {found.expand(said)}"
    return f"invalid value for {name}: {_sentence_case(detail)}"


def _what_is_wrong(exc: Any, path: str) -> tuple[str, str]:
    """The problem and what ``--help`` shows for it: (text, "its options" / "its commands")."""
    if isinstance(exc, click_errors.NoSuchOption):
        hint = ""
        if exc.possibilities:
            hint = f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
        elif _NEGATIVE.match(exc.option_name):
            hint = (
                f" (a value that starts with '-' goes after `--`, as in"
                f" `{path} ... -- {exc.option_name}`)"
            )
        return f"no such option {exc.option_name} for `{path}`{hint}", "its options"
    if isinstance(exc, click_errors.MissingParameter):
        name = _param_name(exc.param)
        kind = "option" if name.startswith("-") else "argument"
        return f"`{path}` needs the {kind} {name}", "how to call it"
    if isinstance(exc, click_errors.BadParameter):
        return f"{_bad_value(exc, _param_name(exc.param))} for `{path}`", "its options"
    message = str(exc.message)
    found = _NO_COMMAND.match(message)
    if found:
        hint = f" (did you mean {found['hint']}?)" if found["hint"] else ""
        return f"no such command {found['name']} in `{path}`{hint}", "its commands"
    found = _EXTRA.match(message)
    if found:
        return _extra_arguments(exc, path, found["args"])
    found = _OPTION.match(message)
    if found:
        return f"option {found['name']} of `{path}` {found['rest']}", "its options"
    return f"{_sentence_case(message)} for `{path}`", "its options"


#: commands whose extra argument is likely a secret: it is not repeated, and this says why
_SECRET_ARGUMENTS = {
    "keys set": "the key is read from a hidden prompt or standard input, never from the"
    " command line (the shell history would keep it)",
}


def _extra_arguments(exc: Any, path: str, args: str) -> tuple[str, str]:
    """What is wrong with extra positional arguments (without repeating a secret), and
    what ``--help`` shows for it."""
    secret = _SECRET_ARGUMENTS.get(path.partition(" ")[2])  # without the program's name
    if secret is not None:
        return f"`{path}` takes only NAME; {secret}", "how to call it"
    command = getattr(getattr(exc, "ctx", None), "command", None)
    params = getattr(command, "params", None) or []
    takes = [p for p in params if getattr(p, "param_type_name", "") == "argument"]
    shown = args if args.strip() else "''"
    if command is not None and not takes:
        return f"`{path}` takes no arguments, only options (got {shown})", "its options"
    return (
        f"unexpected extra arguments ({shown}) for `{path}` (quote a value that has spaces)",
        "how to call it",
    )


def usage_line(exc: BaseException, path: str = "magray") -> str:
    """One sentence for a usage error: what is wrong and which ``--help`` to run.

    ``path`` is the command being parsed; the error's own context names it when it has one.
    """
    ctx: Any = getattr(exc, "ctx", None)
    path = str(ctx.command_path) if ctx is not None else path
    problem, shows = _what_is_wrong(exc, path)
    return f"{problem}; run `{path} --help` for {shows}."
