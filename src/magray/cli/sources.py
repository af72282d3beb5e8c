"""`magray sources list` and `magray forget`: what was ingested, and forgetting it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from magray.cli.app import new_app
from magray.cli.context import nonblank, printable

app = new_app("What `magray ingest` stored: the files and their chunks.")


@app.command("list")
def list_(
    project: str | None = typer.Option(
        None, "--project", help="Only this project.", callback=nonblank
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """List ingested files: path, project, layer and chunks.

    Example: magray sources list --project magray
    """
    from magray.cli.context import open_memory, utf8_arg

    if project is not None:
        utf8_arg(project, "--project")
    with open_memory(reading=True) as memory:
        states = memory.backend.sources(project)
    rows = [
        {"path": s.uri, "project": s.project or None, "layer": str(s.layer), "chunks": s.chunks}
        for s in sorted(states, key=lambda s: (s.project, s.uri))
    ]
    if json_out:
        typer.echo(json.dumps({"sources": rows}, ensure_ascii=False))
        return
    for row in rows:
        where = f" [{printable(str(row['project']))}]" if row["project"] else ""
        path = printable(str(row["path"]))
        typer.echo(f"{path}{where}  {row['layer']}  {row['chunks']} chunk(s)")
    typer.echo(f"{len(rows)} file(s)", err=True)


def forget(
    source: Path | None = typer.Option(
        None, "--source", help="Forget what was ingested from this file or folder."
    ),
    project: str | None = typer.Option(
        None, "--project", help="Forget this whole project.", callback=nonblank
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would go; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Forget ingested files (--source) or a whole project (--project), asking first.

    Example: magray forget --source ~/notes/old --dry-run
    """
    from magray.cli.context import open_memory, utf8_arg
    from magray.errors import NotFoundError, UsageError
    from magray.memory.records import Filters

    if source is None and project is None:
        raise UsageError("say what to forget: --source PATH, --project NAME, or both.")
    if project is not None:
        utf8_arg(project, "--project")
    filters = Filters(project=project)
    with open_memory() as memory:
        planned = memory.forget_where(filters, source=source, dry_run=True)
        if not planned:
            what = " ".join(
                part
                for part in (
                    f"ingested from {source}" if source is not None else "",
                    f"in project {project!r}" if project is not None else "",
                )
                if part
            )
            raise NotFoundError(
                f"no memory was {what}, so nothing was forgotten; check the spelling against"
                " `magray sources list`."
            )
        if not dry_run and planned and not yes:
            if not sys.stdin.isatty():
                raise UsageError(f"this forgets {len(planned)} record(s); add --yes to confirm.")
            typer.confirm(f"Forget {len(planned)} record(s)?", abort=True, err=True)
        gone = planned if dry_run else memory.forget_where(filters, source=source)
    if json_out:
        ids = [r.id for r in gone]
        typer.echo(json.dumps({"dry_run": dry_run, "forgotten": len(ids), "ids": ids}))
        return
    verb = "would forget" if dry_run else "forgot"
    for record in gone[:20]:
        where = record.source.uri if record.source else record.text[:60]
        typer.echo(f"{record.id}  {where}")
    if len(gone) > 20:
        typer.echo(f"… and {len(gone) - 20} more")
    typer.echo(f"{verb} {len(gone)} record(s)")
