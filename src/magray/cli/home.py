"""`magray backup` / `magray restore`: all of a MAGRAY home, not only the memory."""

from __future__ import annotations

import json
from pathlib import Path

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

    result = backup_home(settings(), path, include_keys=include_keys)
    if json_out:
        typer.echo(json.dumps(result.to_json()))
    else:
        typer.echo(
            f"backed up {result.memory_records} memory record(s) and {len(result.parts)}"
            f" other file(s) to {result.path}"
        )


def restore(
    path: Path = typer.Argument(..., help="A folder written by `magray backup`."),
    force: bool = typer.Option(False, "--force", help="Replace data this home already has."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Restore a whole-home backup, verified before anything changes.

    Example: magray restore ~/magray-backups/2026-12-04 --force
    """
    from magray.cli.context import settings
    from magray.home_backup import restore_home

    doc = restore_home(settings(), path, force=force)
    if json_out:
        typer.echo(json.dumps({"restored": str(path), "parts": sorted(doc["parts"])}))
    else:
        typer.echo(f"restored {len(doc['parts'])} file(s) and the memory from {path}")
