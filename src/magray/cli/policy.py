"""`magray policy ...`: show, add and reset the rules that allow, ask about or deny tool calls."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from magray.cli.app import new_app

app = new_app(
    "The permission policy for tools: show, allow, ask, deny, remove, reset (deny always wins)."
)


def _file() -> Path:
    from magray.cli.context import settings
    from magray.tools.policy_file import policy_file

    return policy_file(settings().paths.config_dir)


@app.command("show")
def show(
    json_out: bool = typer.Option(
        False, "--json", help="Print JSON: {file, builtin, rules, defaults}."
    ),
) -> None:
    """Show the built-in deny rules, the stored rules and the defaults when no rule matches.

    Built-in rules hold under --yes; only policy.toml can switch one off
    (builtin_exceptions = ["NAME"]).

    Example: magray policy show --json
    """
    from magray.tools.policy_builtin import BUILTIN_RULES
    from magray.tools.policy_file import load_policy

    path = _file()
    policy = load_policy(path)
    rules = policy.rules
    builtin = [(b, policy.builtin_enabled(b)) for b in BUILTIN_RULES]
    defaults = {
        "read": "allow",
        "write": "ask",
        "exec": "ask",
        "network": "ask",
        "outside roots": "deny",
    }
    if json_out:
        payload = {
            "file": str(path),
            "builtin": [b.to_dict(on) for b, on in builtin],
            "rules": [r.to_dict() for r in rules],
            "defaults": defaults,
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"# {path}", err=True)
    for fixed, on in builtin:
        typer.echo(fixed.describe() + ("" if on else " (switched off in policy.toml)"))
    if not rules:
        typer.echo("no rules; the defaults apply.", err=True)
    for rule in rules:
        typer.echo(rule.describe())
    typer.echo("defaults: " + ", ".join(f"{k} → {v}" for k, v in defaults.items()), err=True)


def _add(
    action: str, tool: str, path: str | None, command: str | None, host: str | None = None
) -> None:
    from magray.tools.policy import Action, check_host_glob, make_rule
    from magray.tools.policy_file import add_rule, load_rules

    rule = make_rule(tool, Action(action), path=path, command=command, host=host)
    if rule.host is not None:
        check_host_glob(rule.host)
    _check_applies(rule.tool, path, command, host)
    if rule in load_rules(_file()):
        typer.echo(f"already there: {rule.describe()}", err=True)
        return
    add_rule(_file(), rule)
    typer.echo(f"added: {rule.describe()}", err=True)


def _check_applies(tool: str, path: str | None, command: str | None, host: str | None) -> None:
    """Refuse a rule that could never match: an unknown tool, or a filter it cannot have.

    Globs (``git_*``) and MCP tools (``mcp__server__tool``, discovered at run time) are
    taken as they are.
    """
    from magray.errors import PolicyError
    from magray.tools.base import Risk
    from magray.tools.registry import default_registry

    if any(c in tool for c in "*?[") or tool.startswith("mcp__"):
        return
    registry = default_registry()
    if tool not in registry:
        raise PolicyError(
            f"no tool named {tool!r}, so the rule would never match; see `magray tools list`"
            " (globs such as git_* are fine)."
        )
    found = registry.get(tool)
    if command is not None and found.risk is not Risk.EXEC:
        raise PolicyError(f"{tool} runs no command; --command applies to shell_exec.")
    if host is not None and found.risk is not Risk.NETWORK:
        raise PolicyError(f"{tool} reaches no host; --host applies to web_fetch and web_search.")
    if path is not None and not found.path_fields:
        raise PolicyError(f"{tool} takes no path; drop --path or name a file tool.")


_TOOL = typer.Argument(..., help="Tool name or glob (shell_exec, git_*, *).")
_PATH = typer.Option(None, "--path", help="Only for path arguments matching this glob.")
_COMMAND = typer.Option(None, "--command", help="Only for commands starting with this argv.")
_HOST = typer.Option(None, "--host", help="Only for network calls to hosts matching this glob.")


@app.command("allow")
def allow(
    tool: str = _TOOL,
    path: str | None = _PATH,
    command: str | None = _COMMAND,
    host: str | None = _HOST,
) -> None:
    """Allow calls of TOOL without asking (a matching deny rule still wins).

    Example: magray policy allow shell_exec --command "git status"
    (or: magray policy allow web_fetch --host docs.python.org)
    """
    _add("allow", tool, path, command, host)


@app.command("ask")
def ask(
    tool: str = _TOOL,
    path: str | None = _PATH,
    command: str | None = _COMMAND,
    host: str | None = _HOST,
) -> None:
    """Ask before calls of TOOL (reads are otherwise allowed without asking).

    Example: magray policy ask file_read --path ".env"
    """
    _add("ask", tool, path, command, host)


@app.command("deny")
def deny(
    tool: str = _TOOL,
    path: str | None = _PATH,
    command: str | None = _COMMAND,
    host: str | None = _HOST,
) -> None:
    """Deny calls of TOOL; deny beats every allow.

    Example: magray policy deny file_write --path "secrets/**"
    """
    _add("deny", tool, path, command, host)


@app.command("remove")
def remove(
    tool: str = _TOOL,
    path: str | None = _PATH,
    command: str | None = _COMMAND,
    host: str | None = _HOST,
) -> None:
    """Remove the rules for TOOL with exactly these filters (any action), leaving the rest.

    Example: magray policy remove shell_exec --command "git status"
    """
    from magray.errors import NotFoundError, PolicyError
    from magray.fileio import locked
    from magray.tools.policy_builtin import BUILTIN_NAMES
    from magray.tools.policy_file import load_rules, save_rules

    if tool.strip() in BUILTIN_NAMES:
        raise PolicyError(
            f"{tool.strip()} is a built-in rule; switch it off only by adding "
            f'builtin_exceptions = ["{tool.strip()}"] to {_file()}.'
        )
    file = _file()
    key = (tool.strip(), path, command, host.strip().lower() if host else None)
    with locked(file):
        rules = load_rules(file)
        kept = [r for r in rules if (r.tool, r.path, r.command, r.host) != key]
        if len(kept) == len(rules):
            raise NotFoundError(
                f"no rule for {tool!r} with those filters; see `magray policy show`."
            )
        save_rules(file, kept)
    for rule in rules:
        if rule not in kept:
            typer.echo(f"removed: {rule.describe()}", err=True)


@app.command("reset")
def reset(
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove every rule, going back to the defaults (asks first).

    Example: magray policy reset --yes
    """
    import sys

    from magray.errors import MagrayError, UsageError
    from magray.tools.policy_file import load_rules, reset_rules

    path = _file()
    if path.exists() and not yes:
        try:
            what = f"{len(load_rules(path))} rule(s) and any built-in exceptions of {path}"
        except MagrayError:  # a damaged file: reset is how it is repaired
            what = f"the damaged {path}"
        if not sys.stdin.isatty():
            raise UsageError(f"reset removes {what}; add --yes to confirm.")
        typer.confirm(f"Remove {what}?", abort=True, err=True)
    removed = reset_rules(path)
    typer.echo(
        "removed every rule." if removed else "there were no rules; nothing changed.", err=True
    )
