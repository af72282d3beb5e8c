"""`magray keys ...`: store, list and remove provider API keys (a 0600 file, never printed)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import typer

from magray.cli.app import new_app

if TYPE_CHECKING:
    from magray.llm.keys import KeyStore

app = new_app("API keys of LLM providers: set, list, remove (stored with mode 0600).")


def _store() -> KeyStore:
    from magray.cli.context import settings
    from magray.llm.keys import KeyStore

    return KeyStore(settings().paths.keys_file)


@app.command("set")
def set_key(
    name: str = typer.Argument(..., help="Provider name as in [llm.providers.NAME]."),
) -> None:
    """Store the key of provider NAME, read from a hidden prompt or from stdin (never argv).

    Example: magray keys set openai          (or: pass show | magray keys set openai)
    """
    store = _store()
    if sys.stdin.isatty():
        value = typer.prompt(f"API key for {name}", hide_input=True)
    else:
        value = sys.stdin.readline()
    store.set(name, value)
    masked = store.list()[name.strip()]
    typer.echo(f"stored the key of {name.strip()} ({masked}) in {store.path}", err=True)
    _warn_if_unused(name.strip())


def _warn_if_unused(name: str) -> None:
    """Warn when no configured provider is called ``name`` (a typo such as ``opneai``
    stores a key nothing reads); the key stays, for a provider added later."""
    import difflib

    from magray.cli import render
    from magray.cli.context import settings
    from magray.errors import MagrayError
    from magray.llm.config import load_llm_config

    try:
        names = sorted(load_llm_config(settings()).providers)
    except MagrayError:
        return  # a broken [llm] section has its own error at first use
    if name in names:
        return
    close = difflib.get_close_matches(name, names, n=2, cutoff=0.6)
    then = f"did you mean {' or '.join(close)}? The key" if close else "the key"
    render.warn(
        f"no provider named {name!r} is configured (configured: {', '.join(names) or 'none'});"
        f" {then} is used once [llm.providers.{name}] is in config.toml (see docs/llm.md)."
    )


@app.command("list")
def list_keys(
    json_out: bool = typer.Option(False, "--json", help="Print JSON: {name: masked key}."),
) -> None:
    """List stored keys, masked like sk-…abcd.

    Example: magray keys list --json
    """
    store = _store()
    keys = store.list()
    if json_out:
        typer.echo(json.dumps(keys))
        return
    if not keys:
        typer.echo("no keys stored; add one with `magray keys set NAME`.", err=True)
    for name, masked in keys.items():
        typer.echo(f"{name:<20} {masked}")


@app.command("remove")
def remove_key(name: str = typer.Argument(..., help="Provider name.")) -> None:
    """Forget the stored key of provider NAME.

    Example: magray keys remove openai
    """
    store = _store()
    store.remove(name)
    typer.echo(f"removed the key of {name}", err=True)
