"""`magray health`: the server's readiness checks, run from the command line."""

from __future__ import annotations

import json

import typer


def health(
    tenant: str = typer.Option("default", "--tenant", help="Whose store to check."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (as /readyz)."),
) -> None:
    """Store open, indexes consistent, embedding model loaded, default provider usable.

    Exits 1 when a check fails.

    Example: magray health --json
    """
    from magray.cli.context import settings
    from magray.observability.health import readiness, report
    from magray.runtime import Runtime
    from magray.server.tenants import tenant_settings

    with Runtime(tenant_settings(settings(), tenant)) as rt:
        data = report(readiness(rt))
    if json_out:
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        for check in data["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            typer.echo(f"{mark}  {check['name']:<16} {check['detail']}")
    if not data["ok"]:
        raise typer.Exit(1)
