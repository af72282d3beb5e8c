"""`magray backup` / `magray restore`: all of a MAGRAY home, not only the memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def backup(
    path: Path | None = typer.Argument(
        None, help="New or empty folder (default: <data dir>/backups/home-<UTC time>)."
    ),
    include_keys: bool = typer.Option(
        False, "--include-keys", help="Also copy the LLM API keys file (keys.toml)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """Back up the whole home: memory, tasks, conversations, usage, audit, settings, policy.

    API keys stay out unless --include-keys. `magray memory backup` covers the memory only.

    Example: magray backup ~/magray-backups/2026-12-04
    """
    from magray.cli.context import settings
    from magray.home_backup import backup_home

    current = settings()
    result = backup_home(current, path, include_keys=include_keys, tenants=_tenants(current))
    if json_out:
        typer.echo(json.dumps(result.to_json()))
    else:
        tenants = f", {len(result.tenants)} server tenant(s)" if result.tenants else ""
        typer.echo(
            f"backed up {result.memory_records} memory record(s){tenants} and"
            f" {len(result.parts)} other file(s) to {result.path}"
        )


def _tenants(current: Any) -> dict[str, Any]:
    """The settings of each tenant of `magray serve` with a folder under <data>/tenants/."""
    from magray.server.tenants import tenant_settings, tenants_on_disk

    names = tenants_on_disk(current.paths.data_dir)
    return {name: tenant_settings(current, name) for name in names}


def restore(
    path: Path = typer.Argument(..., help="A folder written by `magray backup`."),
    force: bool = typer.Option(False, "--force", help="Replace data this home already has."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Restore a whole-home backup, verified before anything changes.

    Example: magray restore ~/magray-backups/2026-12-04 --force
    """
    from functools import partial

    from magray.cli.context import settings
    from magray.home_backup import restore_home
    from magray.server.tenants import tenant_settings

    current = settings()
    doc = restore_home(
        current, path, force=force, tenant_settings=partial(tenant_settings, current)
    )
    if json_out:
        typer.echo(json.dumps({"restored": str(path), "parts": sorted(doc["parts"])}))
    else:
        typer.echo(f"restored {len(doc['parts'])} file(s) and the memory from {path}")
