"""``policy.toml``: the user's rules and which built-in denies are switched off.

```toml
builtin_denies = true                  # false switches every built-in deny off
builtin_exceptions = ["git-metadata"]  # or only these, by name

[[rules]]
tool = "shell_exec"
action = "allow"                       # allow, ask or deny
command = "git status"                 # or path = "secrets/**", or host = "*.python.org"
```

The file is read once into a :class:`PolicyFile` and checked by the validator every settings
file goes through (:func:`magray.config.read_table`): the same types, unknown keys refused
with the closest known ones, and one :class:`~magray.errors.PolicyError` line naming the file
and the key (``…/policy.toml: rules[2].action must be one of allow, ask, deny (got
'maybe').``; rules count from 1, in file order). Other top-level keys are left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magray.config.options import Option
from magray.config.values import read_table
from magray.errors import ConfigError, PolicyError
from magray.tools.policy import Action, Mode, Policy, Rule, make_rule
from magray.tools.policy_builtin import BUILTIN_NAMES

_SEE = "see docs/tools.md for policy.toml"

#: the top-level keys of policy.toml that MAGRAY reads (``rules`` is read below)
POLICY_OPTIONS: tuple[Option, ...] = (
    Option("builtin_denies", True, bool, "Whether the built-in deny rules apply at all."),
    Option("builtin_exceptions", (), list, "Built-in deny rules switched off, by name."),
)

#: the keys of one ``[[rules]]`` table
RULE_OPTIONS: tuple[Option, ...] = (
    Option("tool", None, str, "A tool name or glob, e.g. shell_exec or git_*.", required=True),
    Option(
        "action",
        None,
        str,
        "What the rule decides: allow, ask or deny.",
        choices=tuple(a.value for a in Action),
        required=True,
    ),
    Option("path", None, str, "A path glob relative to the workspace root."),
    Option("command", None, str, "A command prefix, e.g. git status."),
    Option("host", None, str, "A host glob of network tools, e.g. *.python.org."),
)


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """What ``policy.toml`` says, validated."""

    rules: tuple[Rule, ...] = ()
    builtin_denies: bool = True
    builtin_exceptions: tuple[str, ...] = ()

    @property
    def disabled_builtins(self) -> frozenset[str]:
        """The built-in rules switched off (``"*"``: all of them)."""
        off = frozenset() if self.builtin_denies else frozenset({"*"})
        return frozenset(self.builtin_exceptions) | off


def policy_file(config_dir: Path) -> Path:
    return config_dir / "policy.toml"


def _load_table(path: Path) -> dict[str, Any]:
    from magray.fileio import read_toml

    try:
        return read_toml(path, "run `magray policy reset`")
    except ConfigError as exc:
        raise PolicyError(*exc.parts) from None


def _parse_rule(raw: Any, where: str, number: int) -> Rule:
    prefix = f"rules[{number}]"
    values = read_table(raw, RULE_OPTIONS, where=where, prefix=prefix, see=_SEE, error=PolicyError)
    try:
        return make_rule(values.pop("tool"), Action(values.pop("action")), **values)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {prefix}: ", *exc.parts) from None


def parse_policy(data: dict[str, Any], where: str) -> PolicyFile:
    """The validated contents of a ``policy.toml`` table read from ``where``."""
    known = {o.key for o in POLICY_OPTIONS}
    top = read_table(
        {k: v for k, v in data.items() if k in known},
        POLICY_OPTIONS,
        where=where,
        prefix="",
        see=_SEE,
        error=PolicyError,
    )
    unknown = sorted(set(top["builtin_exceptions"]) - BUILTIN_NAMES)
    if unknown:
        raise PolicyError(
            f"{where}: no built-in rule named {', '.join(unknown)}; the built-in rules are "
            f"{', '.join(sorted(BUILTIN_NAMES))}."
        )
    rules = data.get("rules", [])
    if not isinstance(rules, list):
        raise PolicyError(f"{where}: rules must be a list of [[rules]] tables; {_SEE}.")
    return PolicyFile(
        rules=tuple(_parse_rule(raw, where, n) for n, raw in enumerate(rules, 1)),
        builtin_denies=top["builtin_denies"],
        builtin_exceptions=top["builtin_exceptions"],
    )


def read_policy_file(path: Path) -> PolicyFile:
    """``policy.toml`` at ``path``, validated (the defaults when there is no file)."""
    return parse_policy(_load_table(path), str(path))


def load_rules(path: Path) -> tuple[Rule, ...]:
    """The rules stored in ``policy.toml`` (none when the file does not exist)."""
    return read_policy_file(path).rules


def load_disabled_builtins(path: Path) -> frozenset[str]:
    """Built-in rules ``policy.toml`` switches off: ``builtin_exceptions = [names]``,
    or all of them with ``builtin_denies = false``."""
    return read_policy_file(path).disabled_builtins


def load_policy(path: Path, mode: Mode | None = None) -> Policy:
    """The policy stored in ``policy.toml``: its rules and built-in exceptions, under ``mode``."""
    stored = read_policy_file(path)
    return Policy(
        rules=stored.rules, mode=mode or Mode(), disabled_builtins=stored.disabled_builtins
    )


def save_rules(path: Path, rules: Sequence[Rule]) -> None:
    """Write ``rules`` to ``policy.toml`` atomically (other settings in it are kept)."""
    from magray.fileio import write_toml

    data = {k: v for k, v in _load_table(path).items() if k != "rules"}
    data["rules"] = [r.to_dict() for r in rules]
    write_toml(path, data)


def add_rule(path: Path, rule: Rule) -> tuple[Rule, ...]:
    """Append ``rule`` (unless already present) and return all rules."""
    from magray.fileio import locked

    with locked(path):
        rules = load_rules(path)
        if rule not in rules:
            rules = (*rules, rule)
            save_rules(path, rules)
    return rules


def reset_rules(path: Path) -> bool:
    """Remove every rule; True when there was a policy file."""
    from magray.fileio import locked

    with locked(path):
        existed = path.exists()
        path.unlink(missing_ok=True)
    return existed
