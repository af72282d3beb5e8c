"""`magray auth ...`: the server's API keys (not the LLM provider keys of `magray keys`)."""

from __future__ import annotations

import json

import typer

from magray.cli.app import new_app

app = new_app("API keys of `magray serve`: create, list, revoke.")


def _store() -> object:
    from magray.cli.context import settings
    from magray.server.keys import KeyStore, keys_file

    return KeyStore(keys_file(settings().paths.data_dir))


@app.command("create-key")
def create_key(
    role: str = typer.Option(..., "--role", help="admin | writer | reader."),
    tenant: str = typer.Option("default", "--tenant", help="The tenant the key acts in."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a key; it is printed once and only its hash is stored.

    Example: magray auth create-key --role writer --tenant acme --json
    """
    from magray.server.keys import KeyStore, parse_role

    store = _store()
    assert isinstance(store, KeyStore)
    key, secret = store.create(parse_role(role), tenant)
    if json_out:
        typer.echo(
            json.dumps({"id": key.id, "key": secret, "role": str(key.role), "tenant": key.tenant})
        )
        return
    typer.echo(secret)
    typer.echo(f"key {key.id}: {key.role} of tenant {key.tenant}; shown only now.", err=True)


@app.command("list-keys")
def list_keys(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List keys (ids, roles, tenants; never the keys themselves).

    Example: magray auth list-keys --json
    """
    from magray.server.keys import KeyStore

    store = _store()
    assert isinstance(store, KeyStore)
    keys = store.list()
    if json_out:
        typer.echo(json.dumps([k.to_json() for k in keys]))
        return
    if not keys:
        typer.echo(
            "no API keys yet; create one with `magray auth create-key --role reader --tenant"
            " default`."
        )
    for k in keys:
        data = k.to_json()
        state = "revoked" if k.revoked_at is not None else "active"
        typer.echo(f"{k.id}  {k.role:<6}  {k.tenant:<20}  {data['created_at']}  {state}")


@app.command("revoke-key")
def revoke_key(id: str = typer.Argument(..., help="The key's id (from list-keys).")) -> None:
    """Revoke a key; a running server refuses it from its next request on.

    Example: magray auth revoke-key 3fa9c2d41b07
    """
    from magray.errors import UsageError
    from magray.server.keys import KeyStore

    if not id.strip():
        raise UsageError("the key id is empty; give one of `magray auth list-keys`.")
    store = _store()
    assert isinstance(store, KeyStore)
    key = store.revoke(id)
    typer.echo(f"{key.id}  revoked")
