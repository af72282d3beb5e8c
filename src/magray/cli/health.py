"""`magray health`: the server's readiness checks, run from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def health(
    tenant: str | None = typer.Option(
        None,
        "--tenant",
        help="Check this tenant of `magray serve` instead of the store the CLI uses.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (as /readyz)."),
) -> None:
    """Store open, indexes consistent, embedding model loaded, default provider usable.

    Checks what the other commands use (the home's own memory store); with --tenant, that
    tenant's store of `magray serve` (what its /readyz answers for it). Exits 1 when a check
    fails.

    Example: magray health --json
    """
    from magray.cli.context import settings
    from magray.observability.health import readiness, report
    from magray.runtime import Runtime
    from magray.server.tenants import tenant_settings

    current = settings()
    if tenant is not None:
        check_known_tenant(current.paths.data_dir, tenant)
        current = tenant_settings(current, tenant)
    with Runtime(current) as rt:
        data = report(readiness(rt))
    if json_out:
        typer.echo(json.dumps(data, ensure_ascii=False))
    else:
        for check in data["checks"]:
            mark = "ok  " if check["ok"] else "FAIL"
            typer.echo(f"{mark}  {check['name']:<16} {check['detail']}")
    if not data["ok"]:
        raise typer.Exit(1)


def check_known_tenant(data_dir: Path, tenant: str) -> None:
    """A tenant other than ``default`` must have data or a key: checking a misspelt name
    would create an empty tenant and call it healthy (and listing its audit entries would
    answer a typo with nothing)."""
    from magray.errors import NotFoundError
    from magray.server.keys import KeyStore, keys_file
    from magray.server.tenants import tenant_dir

    if tenant == "default" or tenant_dir(data_dir, tenant).is_dir():
        return
    store = keys_file(data_dir)
    if store.is_file() and any(k.tenant == tenant for k in KeyStore(store).list()):
        return
    raise NotFoundError(
        f"no tenant {tenant!r}: it has no data and no key; check the name, or create a key"
        f" with `magray auth create-key --role reader --tenant {tenant}`."
    )
