"""The permission policy: rules on tool names and arguments decide allow, ask or deny.

Order of decision for one call:

1. every path argument must lie inside the workspace roots, else **deny**; MAGRAY's own
   secrets (``ToolContext.secret_files``: the provider keys file, the server's key
   database) are denied to every tool, under any rule and ``--yes``;
2. read-only mode denies anything that is not a read;
3. matching rules: any ``deny`` wins, then ``allow``, then ``ask``;
4. defaults: reads are allowed; writes, commands and network access ask.

Built-in deny rules (``policy_builtin``) come right after step 1: ``.git`` is not
written, and destructive commands (``rm -rf /``, ``mkfs``, ``dd of=/dev/…``, fork bombs)
are not run, whatever the rules and ``--yes`` say; ``policy.toml`` can switch them off by
name only (``builtin_exceptions = ["git-metadata"]``, or ``builtin_denies = false``).

A rule names a tool (a glob like ``git_*``) and optionally a ``path`` glob
(``secrets/**``, matched against paths relative to the root; a rule that matches a folder
covers the folder and everything under it, so ``secrets/**`` and ``secrets`` both cover
``secrets`` and ``secrets/key.txt``; a deny or ask rule applies when it covers any path
of the call, an allow rule only when it covers all of them) or a ``command``
prefix (``git status`` matches ``git status --short``) or a ``host`` glob
(``docs.python.org``, ``*.example.com``) for network tools. Rules live in
``<config_dir>/policy.toml`` as ``[[rules]]`` tables (read and written by
:mod:`magray.tools.policy_file`).

Path rules also bind tools that walk folders (``file_grep``, ``file_glob``, ``file_list``,
the git tools): ``Policy.path_filter(tool)`` tells them which paths to skip, and a move
whose source folder holds a denied path is denied. ``Policy.denied_paths(tool)`` and
``Policy.is_path_denied(tool, rel)`` are the same knowledge for other callers (git
pathspec excludes).

A redirect to a host the call did not name is decided again, as a call to that host
would be (``decide(..., hosts=[host])``, asked through ``invoke``): deny rules win on
every hop, an allow rule lets it through, and an ask needs ``--yes`` or a person's
approval, like any other ask. Redirects within hosts already reached are not re-decided.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import DeniedError, Part, PolicyError
from magray.tools.paths import relative_to_roots, resolve_inside
from magray.tools.policy_builtin import BUILTIN_RULES, BuiltinRule, in_git_dir
from magray.tools.policy_paths import PathFilter as PathFilter  # re-exported
from magray.tools.policy_paths import glob_to_regex as glob_to_regex
from magray.tools.policy_paths import path_matches as path_matches
from magray.tools.risk import Risk

if TYPE_CHECKING:
    from magray.tools.base import Tool, ToolContext


class Action(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule; ``path`` and ``command`` narrow it to matching arguments."""

    tool: str
    action: Action
    path: str | None = None
    command: str | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"tool": self.tool, "action": self.action.value}
        if self.path is not None:
            out["path"] = self.path
        if self.command is not None:
            out["command"] = self.command
        if self.host is not None:
            out["host"] = self.host
        return out

    def describe(self) -> str:
        extra = f" path={self.path!r}" if self.path else ""
        extra += f" command={self.command!r}" if self.command else ""
        extra += f" host={self.host!r}" if self.host else ""
        return f"{self.action.value} {self.tool}{extra}"


@dataclass(frozen=True, slots=True)
class Mode:
    """Run-wide switches: yes approves asks, read_only denies changes, dry_run only previews."""

    yes: bool = False
    read_only: bool = False
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str
    #: the reason in parts, when an error gave it: each surface words its remedy
    parts: tuple[Part, ...] = ()


def _command_matches(prefix: str, argv: Sequence[str]) -> bool:
    try:
        want = shlex.split(prefix)
    except ValueError:
        return False
    return bool(want) and list(argv[: len(want)]) == want


#: the most entries a move's source folder is walked for denied paths
SUBTREE_LIMIT = 1_000_000


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules plus the built-in denies and the defaults described in the module docstring.

    ``disabled_builtins`` names built-in rules switched off in ``policy.toml``
    (``"*"``: all of them).
    """

    rules: tuple[Rule, ...] = ()
    mode: Mode = field(default_factory=Mode)
    disabled_builtins: frozenset[str] = frozenset()

    def builtin_enabled(self, rule: BuiltinRule) -> bool:
        return "*" not in self.disabled_builtins and rule.name not in self.disabled_builtins

    def _matches(
        self, rule: Rule, tool: Tool[Any], rel_paths: list[str], argv: Any, hosts: list[str]
    ) -> bool:
        if not fnmatchcase(tool.name, rule.tool):
            return False
        # an allow rule covers a call only when it covers every path the call names;
        # deny and ask rules, when they cover any of them
        if (
            rule.path is not None
            and rule.action is Action.ALLOW
            and not all(path_matches(rule.path, p) for p in rel_paths)
        ):
            return False
        if rule.host is not None:
            want = rule.host.lower().rstrip(".")
            if not any(fnmatchcase(h.lower().rstrip("."), want) for h in hosts):
                return False
        if rule.path is not None and not any(path_matches(rule.path, p) for p in rel_paths):
            return False
        if rule.command is not None:
            if argv is None or not _command_matches(rule.command, argv):
                return False
            # an allowed prefix never covers options that make the program run others
            from magray.tools.shell import program_running_option

            start = len(shlex.split(rule.command))
            return rule.action is not Action.ALLOW or program_running_option(argv, start) is None
        return True

    def path_action(self, tool: str, rel: str) -> Action | None:
        """What the path rules for ``tool`` say about ``rel`` (deny > allow > ask), or None."""
        hits = {
            r.action
            for r in self.rules
            if r.path is not None and fnmatchcase(tool, r.tool) and path_matches(r.path, rel)
        }
        for action in (Action.DENY, Action.ALLOW, Action.ASK):
            if action in hits:
                return action
        return None

    def is_path_denied(self, tool: str, rel: str) -> bool:
        """True when a deny rule for ``tool`` covers ``rel`` (a path relative to its root)."""
        return self.path_action(tool, rel) is Action.DENY

    def denied_paths(self, tool: str) -> list[str]:
        """The path globs of the deny rules for ``tool``, as written (``secrets/**``).

        Each covers the folder it names and everything under it (see ``path_matches``);
        git tools turn them into pathspec excludes.
        """
        return [
            r.path
            for r in self.rules
            if r.action is Action.DENY and r.path is not None and fnmatchcase(tool, r.tool)
        ]

    def path_filter(self, tool: str) -> PathFilter:
        """The paths ``tool`` must skip when it walks folders (set on ``ToolContext``)."""
        return PathFilter(self, tool)

    def _builtin_denial(
        self, tool: Tool[Any], args: Any, rel_paths: list[str], ctx: ToolContext, risk: Risk
    ) -> Decision | None:
        argv = tool.command(args)
        cwd = ctx.workspace
        raw_cwd = getattr(args, "cwd", None)
        if argv is not None and isinstance(raw_cwd, str):
            cwd = resolve_inside(raw_cwd, ctx.roots)
        write = risk in (Risk.WRITE, Risk.EXEC)  # a command run from .git/ writes there
        for rule in BUILTIN_RULES:
            if not self.builtin_enabled(rule):
                continue
            why = rule.check(rel_paths, argv, ctx.roots, cwd, write)
            if why is not None:
                return Decision(
                    Action.DENY,
                    f"built-in rule {rule.name}: {why} (remove it only by naming it in "
                    "builtin_exceptions in policy.toml)",
                )
        return None

    def _subtree_paths(self, tool: Tool[Any], args: Any, ctx: ToolContext) -> list[str]:
        """Paths under the folders this call moves that a deny rule could care about:
        a ``.git`` folder, a path a path rule for the tool covers (not walked further)."""
        globs = [
            r.path
            for r in self.rules
            if r.path is not None and r.action is Action.DENY and fnmatchcase(tool.name, r.tool)
        ]
        git = any(b.name == "git-metadata" and self.builtin_enabled(b) for b in BUILTIN_RULES)
        if not tool.subtree_fields or not (globs or git):
            return []

        def wanted(rel: str) -> bool:
            return (git and in_git_dir(rel)) or any(path_matches(g, rel) for g in globs)

        out: list[str] = []
        seen = 0
        for name in tool.subtree_fields:
            value = getattr(args, name, None)
            if not isinstance(value, str):
                continue
            top = resolve_inside(value, ctx.roots)
            if not top.is_dir():
                continue
            for dirpath, dirnames, filenames in os.walk(top):
                here = Path(dirpath)
                kept = []
                for entry in dirnames:
                    rel = relative_to_roots(here / entry, ctx.roots)
                    if wanted(rel):
                        out.append(rel)  # covered: nothing under it needs a look
                    else:
                        kept.append(entry)
                dirnames[:] = kept
                out.extend(
                    rel
                    for rel in (relative_to_roots(here / f, ctx.roots) for f in filenames)
                    if wanted(rel)
                )
                seen += len(kept) + len(filenames)
                if seen > SUBTREE_LIMIT:
                    raise DeniedError(
                        f"{value} holds more than {SUBTREE_LIMIT} entries, too many to check "
                        "against the path rules; move smaller folders."
                    )
        return out

    def _inner_denial(self, tool: Tool[Any], inside: list[str]) -> Decision | None:
        """A deny path rule covering a path inside a folder the call moves (an ask rule there
        changes nothing: a move asks by default, and an allow on the folder itself wins)."""
        for rule in self.rules:
            deny = rule.action is Action.DENY and rule.path is not None
            if deny and self._matches(rule, tool, inside, None, []):
                return Decision(Action.DENY, f"policy rule: {rule.describe()}")
        return None

    def decide(
        self, tool: Tool[Any], args: Any, ctx: ToolContext, *, hosts: Sequence[str] | None = None
    ) -> Decision:
        """The decision for calling ``tool`` with (validated) ``args`` in ``ctx``.

        ``hosts`` replaces the hosts the arguments name (``tool.hosts(args)``): the
        decision for a redirect hop to another host.
        """
        rel_paths: list[str] = []
        resolved_paths: list[Path] = []
        try:
            for raw in tool.path_args(args):
                resolved = resolve_inside(raw, ctx.roots)
                resolved_paths.append(resolved)
                rel_paths.append(relative_to_roots(resolved, ctx.roots))
            inside = self._subtree_paths(tool, args, ctx)
        except DeniedError as exc:
            return Decision(Action.DENY, exc.message, exc.clause())
        secret = next((p for p in resolved_paths if ctx.is_secret(p)), None)
        if secret is not None:
            return Decision(
                Action.DENY,
                f"{secret} holds MAGRAY's secrets (LLM provider keys or the server's API keys);"
                " no tool reads or changes it, whatever the rules say (magray keys manages it)",
            )
        risk = tool.risk_for(args)
        if risk is not Risk.READ and ctx.own_folders:
            moved = [resolve_inside(getattr(args, f), ctx.roots) for f in tool.subtree_fields]
            own = _own_folder(resolved_paths, moved, ctx.own_folders)
            if own is not None:
                return Decision(Action.DENY, own)
        if any("\x00" in word for word in tool.command(args) or ()):
            return Decision(Action.DENY, "the command contains a NUL byte; remove it.")
        builtin = self._builtin_denial(tool, args, [*rel_paths, *inside], ctx, risk)
        if builtin is not None:
            return builtin
        if self.mode.read_only and risk is not Risk.READ:
            return Decision(
                Action.DENY, f"{tool.name} is a {risk.value} tool and the run is read-only."
            )
        inner = self._inner_denial(tool, inside)
        if inner is not None:
            return inner

        argv = tool.command(args)
        reached = tool.hosts(args) if hosts is None else list(hosts)
        matched = [r for r in self.rules if self._matches(r, tool, rel_paths, argv, reached)]
        decision = Decision(Action.ASK, f"{risk.value} tools ask by default")
        if risk is Risk.READ:
            decision = Decision(Action.ALLOW, "reads inside the workspace are allowed by default")
        for action in (Action.DENY, Action.ALLOW, Action.ASK):
            hits = [r for r in matched if r.action is action]
            if hits:
                decision = Decision(action, f"policy rule: {hits[0].describe()}")
                break
        if decision.action is Action.ALLOW:
            why = tool.approval_reason(args, ctx)
            if why is not None:
                return Decision(Action.ASK, why)
        return decision


def _own_folder(paths: Sequence[Path], moved: Sequence[Path], own: Sequence[Path]) -> str | None:
    """Why a change to ``paths`` is refused: one lies in MAGRAY's own home folders (or a
    folder in ``moved`` holds one), whose settings, policy and audit log no tool may change;
    None when none does."""
    for path in [*paths, *moved]:
        for folder in own:
            if path.is_relative_to(folder) or (path in moved and folder.is_relative_to(path)):
                return (
                    f"{path} is in MAGRAY's own home ({folder}: settings, policy, audit log); "
                    "tools do not change it, change it with magray config or magray policy"
                )
    return None


def make_rule(
    tool: str,
    action: Action,
    path: str | None = None,
    command: str | None = None,
    host: str | None = None,
) -> Rule:
    """A validated rule (a tool glob, at most one of path / command / host)."""
    if not tool.strip():
        raise PolicyError("a rule needs a tool name or glob, e.g. shell_exec or git_*.")
    if sum(v is not None for v in (path, command, host)) > 1:
        raise PolicyError(
            "a rule takes one of --path, --command or --host, not both; add separate rules."
        )
    if path is not None and not path.strip():
        # an empty glob would cover every path: a "restricted" rule that restricts nothing
        raise PolicyError("a path rule needs a path or glob, e.g. src/** or secrets/*.")
    if host is not None and not host.strip():
        raise PolicyError("a host rule needs a host name or glob, e.g. docs.python.org.")
    if command is not None:
        try:
            if not shlex.split(command):
                raise ValueError
        except ValueError:
            raise PolicyError(
                f"command prefix {command!r} is empty or badly quoted; give the command's first"
                " words with every quote closed, e.g. git status."
            ) from None
    host = host.strip().lower() if host is not None else None
    return Rule(tool=tool.strip(), action=action, path=path, command=command, host=host)


def check_host_glob(host: str) -> None:
    """Refuse a host rule's glob that no host can match: a URL, a path, a space, ``@``, a
    port or an IPv6 address in brackets (rules match a URL's bare host name), naming the
    host to give instead. Checked when a rule is added; a stored rule still loads, so the
    commands that remove it keep working."""
    from urllib.parse import urlsplit

    glob = host.strip().lower()
    if "://" in glob:
        name = urlsplit(glob).hostname
        hint = f" give just the host, e.g. {name}" if name else " give just the host"
        raise PolicyError(f"host rule {host!r} is a URL, not a host;{hint}.")
    if any(c.isspace() or c in "/@" for c in glob):
        raise PolicyError(
            f"host rule {host!r} holds a space, '/' or '@', which no host name has; give a"
            " host name or glob, e.g. docs.python.org or *.example.com."
        )
    name, colon, port = glob.rpartition(":")
    if colon and name and ":" not in name and port.isdigit():
        raise PolicyError(
            f"host rule {host!r} names a port; rules match the host alone, so give {name}."
        )
    if glob.startswith("[") and glob.endswith("]") and ":" in glob:
        raise PolicyError(
            f"host rule {host!r} is an IPv6 address in brackets; give it without them:"
            f" {glob[1:-1]}."
        )
