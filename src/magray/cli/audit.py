"""`magray audit ...`: the hash-chained audit log of the server."""

from __future__ import annotations

import json

import typer

from magray.cli.app import new_app

app = new_app("The tamper-evident audit log: list entries, verify the chain.")


def _chain() -> object:
    from magray.cli.context import settings
    from magray.observability.audit_chain import AuditChain, chain_file

    return AuditChain(chain_file(settings().paths.data_dir))


@app.command("list")
def list_(
    tenant: str | None = typer.Option(None, "--tenant", help="Only this tenant."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many (newest)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the newest audit entries, oldest first.

    Example: magray audit list --tenant acme --json
    """
    from magray.observability.audit_chain import AuditChain

    if tenant is not None:
        from magray.server.keys import check_tenant

        check_tenant(tenant)  # a misspelt name is refused, not answered with nothing
    chain = _chain()
    assert isinstance(chain, AuditChain)
    entries = chain.entries(tenant=tenant, limit=limit)
    if tenant is not None and not entries:
        from magray.cli.context import settings
        from magray.cli.health import check_known_tenant

        check_known_tenant(settings().paths.data_dir, tenant)
    if json_out:
        typer.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False))
        return
    for e in entries:
        data = e.to_json()
        typer.echo(
            f"{e.seq:>6}  {data['at']}  {e.tenant:<12} {e.actor:<14} {e.outcome:<7}"
            f" {e.action}  {e.target}"
        )


@app.command("verify")
def verify(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Recompute the hash chain; exits 1 and names the first bad entry if any was changed.

    Example: magray audit verify
    """
    from magray.observability.audit_chain import AuditChain

    chain = _chain()
    assert isinstance(chain, AuditChain)
    result = chain.verify()
    if json_out:
        typer.echo(json.dumps(result.to_json()))
    elif result.ok:
        typer.echo(f"ok: {result.checked} entries, chain intact")
    else:
        typer.echo(f"broken at entry {result.first_bad}: {result.reason}")
    if not result.ok:
        raise typer.Exit(1)
