"""The permission policy: rules on tool names and arguments decide allow, ask or deny.

Order of decision for one call:

1. every path argument must lie inside the workspace roots, else **deny**;
2. read-only mode denies anything that is not a read;
3. matching rules: any ``deny`` wins, then ``allow``, then ``ask``;
4. defaults: reads are allowed; writes, commands and network access ask.

A rule names a tool (a glob like ``git_*``) and optionally a ``path`` glob
(``secrets/**``, matched against paths relative to the root) or a ``command``
prefix (``git status`` matches ``git status --short``) or a ``host`` glob
(``docs.python.org``, ``*.example.com``) for network tools. Rules live in
``<config_dir>/policy.toml`` as ``[[rules]]`` tables.

A redirect to a host the call did not name is decided again, as a call to that host
would be (``decide(..., hosts=[host])``, asked through ``invoke``): deny rules win on
every hop, an allow rule lets it through, and an ask needs ``--yes`` or a person's
approval, like any other ask. Redirects within hosts already reached are not re-decided.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from magray.errors import DeniedError, PolicyError
from magray.tools.base import Risk, Tool, ToolContext
from magray.tools.paths import relative_to_roots, resolve_inside
from magray.tools.shell import program_running_option


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


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: ``**`` crosses folders, ``*`` and ``?`` stay within one."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _command_matches(prefix: str, argv: Sequence[str]) -> bool:
    try:
        want = shlex.split(prefix)
    except ValueError:
        return False
    return bool(want) and list(argv[: len(want)]) == want


@dataclass(frozen=True, slots=True)
class Policy:
    """Rules plus the defaults described in the module docstring."""

    rules: tuple[Rule, ...] = ()
    mode: Mode = field(default_factory=Mode)

    def _matches(
        self, rule: Rule, tool: Tool[Any], rel_paths: list[str], argv: Any, hosts: list[str]
    ) -> bool:
        if not fnmatchcase(tool.name, rule.tool):
            return False
        if rule.host is not None:
            want = rule.host.lower().rstrip(".")
            if not any(fnmatchcase(h.lower().rstrip("."), want) for h in hosts):
                return False
        if rule.path is not None:
            regex = glob_to_regex(rule.path.strip("/") or "**")
            if not any(regex.match(p) for p in rel_paths):
                return False
        if rule.command is not None:
            if argv is None or not _command_matches(rule.command, argv):
                return False
            # an allowed prefix never covers options that make the program run others
            start = len(shlex.split(rule.command))
            return rule.action is not Action.ALLOW or program_running_option(argv, start) is None
        return True

    def decide(
        self, tool: Tool[Any], args: Any, ctx: ToolContext, *, hosts: Sequence[str] | None = None
    ) -> Decision:
        """The decision for calling ``tool`` with (validated) ``args`` in ``ctx``.

        ``hosts`` replaces the hosts the arguments name (``tool.hosts(args)``): the
        decision for a redirect hop to another host.
        """
        rel_paths: list[str] = []
        for raw in tool.path_args(args):
            try:
                resolved = resolve_inside(raw, ctx.roots)
            except DeniedError as exc:
                return Decision(Action.DENY, exc.message)
            rel_paths.append(relative_to_roots(resolved, ctx.roots))
        risk = tool.risk_for(args)
        if self.mode.read_only and risk is not Risk.READ:
            return Decision(
                Action.DENY, f"{tool.name} is a {risk.value} tool and the run is read-only."
            )
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


def policy_file(config_dir: Path) -> Path:
    return config_dir / "policy.toml"


def _parse_rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("tool"), str):
        raise PolicyError(f"{where}: each [[rules]] entry needs a tool name; fix or reset it.")
    try:
        action = Action(str(raw.get("action", "")))
    except ValueError:
        raise PolicyError(
            f"{where}: rule for {raw['tool']!r} needs action allow, ask or deny."
        ) from None
    unknown = set(raw) - {"tool", "action", "path", "command", "host"}
    if unknown:
        raise PolicyError(f"{where}: unknown rule field(s) {', '.join(sorted(unknown))}.")
    path, command, host = raw.get("path"), raw.get("command"), raw.get("host")
    if not all(isinstance(v, str | None) for v in (path, command, host)):
        raise PolicyError(f"{where}: path, command and host must be text.")
    return make_rule(raw["tool"], action, path=path, command=command, host=host)


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
    if host is not None and not host.strip():
        raise PolicyError("a host rule needs a host name or glob, e.g. docs.python.org.")
    if command is not None:
        try:
            if not shlex.split(command):
                raise ValueError
        except ValueError:
            raise PolicyError(f"command prefix {command!r} is empty or badly quoted.") from None
    host = host.strip().lower() if host is not None else None
    return Rule(tool=tool.strip(), action=action, path=path, command=command, host=host)


def load_rules(path: Path) -> tuple[Rule, ...]:
    """The rules stored in ``policy.toml`` (none when the file does not exist)."""
    if not path.exists():
        return ()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path} is not valid TOML ({exc}); run `magray policy reset`.") from None
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise PolicyError(f"{path}: 'rules' must be a list of [[rules]] tables.")
    return tuple(_parse_rule(raw, str(path)) for raw in rules)


def save_rules(path: Path, rules: Sequence[Rule]) -> None:
    """Write ``rules`` to ``policy.toml`` atomically."""
    import tomli_w

    from magray.tools.files_edit import atomic_write

    atomic_write(path, tomli_w.dumps({"rules": [r.to_dict() for r in rules]}))


def add_rule(path: Path, rule: Rule) -> tuple[Rule, ...]:
    """Append ``rule`` (unless already present) and return all rules."""
    rules = load_rules(path)
    if rule not in rules:
        rules = (*rules, rule)
        save_rules(path, rules)
    return rules


def reset_rules(path: Path) -> bool:
    """Remove every rule; True when there was a policy file."""
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
