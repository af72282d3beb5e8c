"""`magray mcp ...`: add, list and remove MCP servers whose tools the agent may call."""

from __future__ import annotations

import json
from typing import Any

import typer

from magray.cli.app import new_app
from magray.errors import MagrayError

app = new_app("MCP servers: their tools join the agent's, under the permission policy.")


def _file() -> Any:
    from magray.cli.context import settings
    from magray.tools.mcp_config import mcp_file

    return mcp_file(settings().paths.config_dir)


@app.command("add", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Server name (tools become mcp__NAME__TOOL)."),
    url: str | None = typer.Option(None, "--url", help="Streamable HTTP endpoint."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=0.1, help="Seconds for connecting and for each call (default 30)."
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a server of that name."),
) -> None:
    """Add a stdio server (the command after --) or a streamable HTTP server (--url).

    Example: magray mcp add files -- npx -y @modelcontextprotocol/server-filesystem .
    """
    from magray.tools.mcp_config import add_server, make_server

    command = list(ctx.args)
    if command and command[0].startswith("-"):
        _unknown_option(name, command[0])
    server = make_server(name, command=command or None, url=url, timeout=timeout)
    add_server(_file(), server, replace=replace)
    typer.echo(f"added MCP server {server.name} ({server.transport}: {server.target})", err=True)
    if command and _missing(command[0]):
        from magray.cli import render

        render.warn(
            f"{command[0]} was not found (no such file, not on PATH); `magray mcp list` shows"
            f" {server.name} unreachable until it is installed."
        )


def _unknown_option(name: str, option: str) -> None:
    """An option ``mcp add`` does not know, given before ``--``: not the server's command."""
    import difflib

    from magray.errors import UsageError

    flag = option.split("=", 1)[0]
    close = difflib.get_close_matches(flag, ["--url", "--timeout", "--replace"], n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UsageError(
        f"no such option {flag} for `magray mcp add`{hint}; give the server's command after"
        f" `--`, as in `magray mcp add {name} -- npx -y @modelcontextprotocol/server-memory`."
    )


def _missing(program: str) -> bool:
    import shutil

    return shutil.which(program) is None


@app.command("list")
def list_servers(
    json_out: bool = typer.Option(
        False,
        "--json",
        help="Print JSON: [{name, transport, target, timeout, ok, error, tools: [{name, "
        "tool, description, risk, schema}]}].",
    ),
    timeout: float = typer.Option(
        10.0, "--timeout", min=0.1, help="Seconds to wait for each server to answer."
    ),
) -> None:
    """List the configured servers and the tools each offers (unreachable ones say so).

    Example: magray mcp list --json
    """
    from magray.tools.mcp import load_servers, server_tools

    rows: list[dict[str, Any]] = []
    for server in load_servers(_file()).values():
        row: dict[str, Any] = {
            "name": server.name,
            "transport": server.transport,
            "target": server.target,
            "timeout": server.timeout,
            "ok": True,
            "error": None,
            "tools": [],
        }
        try:
            tools = server_tools(server, timeout=min(timeout, server.timeout))
        except MagrayError as exc:
            row.update(ok=False, error=exc.message)
        else:
            row["tools"] = [
                {
                    "name": t.name,
                    "tool": t.remote_name,
                    "description": t.description,
                    "risk": t.risk.value,
                    "schema": t.schema(),
                }
                for t in tools
            ]
        rows.append(row)
    if json_out:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        typer.echo("no MCP servers configured; add one with `magray mcp add`.", err=True)
    for row in rows:
        state = f"{len(row['tools'])} tools" if row["ok"] else f"unreachable: {row['error']}"
        typer.echo(f"{row['name']}  {row['transport']}  {row['target']}  ({state})")
        for t in row["tools"]:
            typer.echo(f"  {t['name']:<30} {t['risk']:<8} {t['description']}")


@app.command("remove")
def remove(name: str = typer.Argument(..., help="Server name.")) -> None:
    """Remove a server (its tools leave the agent).

    Example: magray mcp remove files
    """
    from magray.tools.mcp_config import remove_server

    gone = remove_server(_file(), name)
    typer.echo(f"removed MCP server {gone.name}", err=True)


@app.command("call")
def call(
    server: str = typer.Argument(..., help="Server name (see `magray mcp list`)."),
    tool: str = typer.Argument(..., help="The server's own tool name, e.g. add."),
    arg: list[str] = typer.Option(
        [], "--arg", "-a", help="Argument KEY=VALUE (VALUE parsed as JSON when it parses)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Approve the call if the policy asks."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the call; make none."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.1, help="Seconds for the call."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Call one tool of a server under the permission policy (exit 4 when denied).

    Example: magray mcp call demo add --arg a=2 --arg b=3 --yes
    """
    import sys
    from pathlib import Path

    from magray.cli.context import runtime
    from magray.cli.tools import _confirm, echo_failure, parse_args
    from magray.errors import MagrayError, NotFoundError
    from magray.tools.base import ToolContext
    from magray.tools.invoke import invoke
    from magray.tools.mcp import get_server, server_tools
    from magray.tools.policy import Mode

    rt = runtime()
    try:
        found = {t.remote_name: t for t in server_tools(get_server(_file(), server))}
        if tool not in found:
            known = ", ".join(sorted(found)) or "none"
            raise NotFoundError(f"MCP server {server!r} has no tool {tool!r}; it has: {known}.")
        chosen = found[tool]
        interactive = sys.stdin.isatty() and sys.stderr.isatty()
        with rt:
            done = invoke(
                chosen,
                parse_args(arg, chosen.schema()),
                ToolContext(roots=(Path.cwd(),), timeout=timeout, settings=rt.settings),
                rt.policy(Mode(yes=yes, dry_run=dry_run)),
                rt.audit,
                confirm=_confirm if interactive else None,
            )
    except MagrayError as exc:
        if json_out:  # as `tools run --json`: an object on stdout, and the error line
            echo_failure(f"mcp__{server}__{tool}", exc)
        raise
    if json_out:
        typer.echo(json.dumps(done.to_dict(), ensure_ascii=False))
    else:
        if done.result.output:
            typer.echo(done.result.output.rstrip("\n"))
        if done.result.error and done.result.error != done.result.output:
            typer.echo(f"{chosen.name}: {done.result.error}", err=True)
    if not done.result.ok:
        raise typer.Exit(1)
