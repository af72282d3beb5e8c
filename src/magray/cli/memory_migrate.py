"""`magray memory migrate`: move the store between the embedded and the PostgreSQL backend.

Registered on the ``magray memory`` group by ``magray.cli.memory`` importing this module.
"""

from __future__ import annotations

import typer

from magray.cli.context import settings
from magray.cli.memory import JSON, app, emit
from magray.errors import UsageError


@app.command("migrate")
def migrate(
    to: str = typer.Option(..., "--to", help="Destination backend: postgres or sqlite."),
    dsn: str = typer.Option(
        "", "--dsn", help="PostgreSQL connection string (default: memory.dsn)."
    ),
    batch: int = typer.Option(500, "--batch", min=1, max=100_000, help="Records per transaction."),
    json_out: bool = JSON,
) -> None:
    """Copy every memory into another backend, verify it, and resume if interrupted.

    The embedded store (in the data dir) and the PostgreSQL store (memory.dsn or --dsn,
    schema memory.pg_schema) are the two ends; neither is changed except by adding records
    to the destination. Switch with `magray config set memory.backend postgres` afterwards.

    Example: magray memory migrate --to postgres --dsn postgresql://me@db.example/magray
    """
    from magray.cli import render
    from magray.memory.backends import backend_kind
    from magray.memory.migrate import copy

    target = to.strip().lower()
    if target not in {"postgres", "sqlite"}:
        raise UsageError(f"--to must be postgres or sqlite (got {to!r}).")
    base = settings(**({"memory.dsn": dsn} if dsn else {}))
    if not base.memory.dsn.strip():
        raise UsageError(
            "give the PostgreSQL store with --dsn postgresql://user@host/db (or set memory.dsn)."
        )
    source_name = "sqlite" if target == "postgres" else "postgres"
    source = backend_kind(source_name).open(base.with_overrides({"memory.backend": source_name}))
    try:
        dest = backend_kind(target).open(base.with_overrides({"memory.backend": target}))
        try:
            with render.progress(f"migrating to {target}") as bar:
                report = copy(source, dest, batch=batch, progress=bar)
        finally:
            dest.close()
    finally:
        source.close()
    if json_out:
        emit(report.to_dict())
    else:
        typer.echo(
            f"migrated {report.records} record(s) to {report.destination}: {report.copied}"
            f" copied, {report.already_there} already there, {report.verified} verified"
        )
    if not report.ok:
        render.warn(
            f"{len(report.missing)} record(s) missing and {len(report.mismatched)} with another"
            " checksum in the destination; run the same command again."
        )
        raise typer.Exit(1)
