"""`magray tools ...`: list the agent's tools and run one under the permission policy."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from magray.cli.app import new_app
from magray.errors import DeniedError, MagrayError, UsageError

app = new_app("The agent's tools: list them, or run one under the permission policy.")


def _text_fields(schema: dict[str, Any]) -> set[str]:
    """Argument names whose only scalar type is text (their values are never JSON-parsed)."""
    out = set()
    for name, prop in schema.get("properties", {}).items():
        kinds = {p.get("type") for p in prop.get("anyOf", [prop])} - {"null"}
        if kinds == {"string"}:
            out.add(name)
    return out


def parse_args(pairs: list[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON is taken as JSON, otherwise as text.

    Text-only arguments in ``schema`` get the raw text unless it is a JSON string
    (``replace=2`` is "2"; ``content="a\\nb"`` has a newline).
    """
    text = _text_fields(schema or {})
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--arg wants KEY=VALUE (got {pair!r}).")
        if key in out:
            raise UsageError(
                f"--arg {key} is given twice; give it once (a list is one JSON value, e.g."
                f' {key}=\'["a", "b"]\').'
            )
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key in text and not isinstance(value, str):
            value = raw
        out[key] = value
    return out


@app.command("list")
def list_tools(
    json_out: bool = typer.Option(
        False, "--json", help="Print JSON: name, description, risk, schema."
    ),
    no_mcp: bool = typer.Option(
        False, "--no-mcp", help="Leave out MCP servers' tools (they are not started)."
    ),
) -> None:
    """List the agent's tools with their risk class: built-ins, plugins and MCP servers' tools.

    Example: magray tools list --json
    """
    from magray.cli.context import runtime

    with runtime() as rt:
        tools = list(rt.tool_registry(mcp=not no_mcp))
    if json_out:
        rows = [
            {
                "name": t.name,
                "description": t.description,
                "risk": t.risk.value,
                "schema": t.schema(),
            }
            for t in tools
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max((len(t.name) for t in tools), default=0) + 2
    for tool in tools:
        typer.echo(f"{tool.name:<{width}}{tool.risk.value:<9}{tool.description}")


def _confirm(name: str, preview: str) -> bool:
    typer.echo(f"{name} wants to do:\n{preview}", err=True)
    return typer.confirm("Allow it?", default=False, err=True)


@app.command("run")
def run_tool(
    name: str = typer.Argument(..., help="Tool name (see `magray tools list`)."),
    arg: list[str] = typer.Option(
        [], "--arg", "-a", help="Argument KEY=VALUE (VALUE parsed as JSON when it parses)."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Approve calls the policy would ask about."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would happen; change nothing."
    ),
    read_only: bool = typer.Option(False, "--read-only", help="Deny writes, commands and network."),
    root: list[Path] = typer.Option(
        [],
        "--root",
        help="Allowed workspace root (repeatable; default: tools.roots, else the current folder).",
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        min=0.1,
        help="Seconds before the tool is stopped (default: tools.timeout).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run one tool. Exit 4 when the policy denies it or an ask cannot be asked (no TTY).

    Example: magray tools run file_edit --arg path=README.md --arg search=foo --arg replace=bar
    """
    from magray.cli.context import runtime
    from magray.tools.invoke import invoke
    from magray.tools.mcp import server_of
    from magray.tools.policy import Mode

    rt = runtime()
    server = server_of(name)
    tool = rt.tool_registry(mcp=server is not None, only_server=server).get(name)
    ctx = rt.tool_context(root, timeout)
    policy = rt.policy(Mode(yes=yes, read_only=read_only, dry_run=dry_run))
    interactive = sys.stdin.isatty() and sys.stderr.isatty()
    try:
        with rt:
            done = invoke(
                tool,
                parse_args(arg, tool.schema()),
                ctx,
                policy,
                rt.audit,
                confirm=_confirm if interactive else None,
            )
    except MagrayError as exc:
        if json_out:  # scripts get an object on stdout in every case; the error line too
            echo_failure(name, exc)
        raise
    if json_out:
        typer.echo(json.dumps(done.to_dict(), ensure_ascii=False))
    else:
        if done.result.output:
            typer.echo(done.result.output.rstrip("\n"))
        if done.result.error:
            typer.echo(f"{name}: {done.result.error}", err=True)
    if not done.result.ok:
        raise typer.Exit(1)


def echo_failure(tool: str, exc: MagrayError) -> None:
    """The ``--json`` object of a tool call that failed before it ran (``tools run``,
    ``mcp call``): the shape of a result, with the error and its exit code."""
    failed = {
        "tool": tool,
        "decision": "deny" if isinstance(exc, DeniedError) else None,
        "ok": False,
        "output": "",
        "data": None,
        "error": exc.message,
        "exit_code": exc.exit_code,
    }
    typer.echo(json.dumps(failed, ensure_ascii=False))


@app.command("audit")
def audit(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="Most recent rows to show."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON rows."),
) -> None:
    """Show the newest audit rows: every policy decision and tool call (arguments as digests).

    Example: magray tools audit --limit 5 --json
    """
    from dataclasses import asdict

    from magray.cli.context import iso, settings
    from magray.tools.audit import AuditLog

    rows = AuditLog(settings().paths.audit_db).rows(limit)
    if json_out:
        typer.echo(json.dumps([{**asdict(r), "time": iso(r.ts)} for r in rows], indent=2))
        return
    if not rows:
        typer.echo("no tool calls recorded yet.", err=True)
    for r in rows:
        typer.echo(
            f"{iso(r.ts)}  {r.tool:<14} {r.decision:<6} {r.outcome:<8} {r.duration_ms:>6} ms"
            f"  {r.args_sha256[:12]}  {r.detail}"
        )
