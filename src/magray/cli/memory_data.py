"""`magray memory backup|restore|export|import`: keeping the memory safe and portable.

Registered on the ``magray memory`` group by ``magray.cli.memory`` importing this module.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from magray.cli.context import nonblank, open_memory, parse_layer, settings, utf8_arg
from magray.cli.memory import JSON, app, emit
from magray.errors import BackupError, UsageError

if TYPE_CHECKING:
    from magray.memory.records import Filters


@app.command("backup")
def backup(
    path: Path | None = typer.Argument(
        None, help="New or empty directory (default: <data dir>/backups/<UTC time>)."
    ),
    json_out: bool = JSON,
) -> None:
    """Take a consistent backup of the store and its indexes while MAGRAY keeps running.

    Example: magray memory backup ~/magray-backups/before-upgrade
    """
    from magray.memory.transfer.backup import backup as run_backup

    with open_memory() as memory:
        manifest = run_backup(memory, path)
    if json_out:
        emit({"path": str(manifest.path), **manifest.to_json()})
    else:
        typer.echo(f"backed up {manifest.records} record(s) to {manifest.path}")


@app.command("restore")
def restore(
    path: Path = typer.Argument(..., help="A backup directory made by `magray memory backup`."),
    force: bool = typer.Option(False, "--force", help="Replace a store that holds records."),
    json_out: bool = JSON,
) -> None:
    """Replace the store with a verified backup (all or nothing; stop other magray first).

    Example: magray memory restore ~/magray-backups/before-upgrade --force
    """
    from magray.memory.transfer.backup import restore as run_restore

    manifest = run_restore(settings(), path, force=force)
    if json_out:
        emit({"path": str(manifest.path), "restored": manifest.records, "counts": manifest.counts})
    else:
        typer.echo(f"restored {manifest.records} record(s) from {manifest.path}")


@app.command("export")
def export(
    path: str = typer.Argument("-", help="Output .jsonl file, or '-' for standard output."),
    layer: list[str] = typer.Option([], "--layer", help="Only this layer (repeatable)."),
    project: str | None = typer.Option(
        None, "--project", help="Only this project.", callback=nonblank
    ),
    vectors: bool = typer.Option(
        False, "--vectors", help="Include the vectors (import then re-embeds nothing)."
    ),
) -> None:
    """Export memories as JSON Lines (one record per line, after a header line).

    Example: magray memory export memories.jsonl --layer assets --vectors
    """
    from magray.cli import render
    from magray.fileio import atomic_path
    from magray.memory.records import Filters
    from magray.memory.transfer.jsonl import export as run_export

    filters = Filters(layers=tuple(parse_layer(x) for x in layer), project=project)
    target = None if path == "-" else export_target(path)
    with open_memory(reading=True) as memory, render.progress("exporting") as bar:
        if target is None:
            out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
            try:
                n = run_export(memory, out, filters=filters, with_vectors=vectors, progress=bar)
            finally:
                out.detach()
            _nothing_matched(n, filters)
            return
        try:
            if target.exists() and not target.is_file():
                # a device, a FIFO, /dev/stdout: written in place, never replaced by a rename
                with target.open("w", encoding="utf-8", newline="\n") as fh:
                    n = run_export(memory, fh, filters=filters, with_vectors=vectors, progress=bar)
            else:
                _sweep_exports(target)
                with (
                    atomic_path(target) as tmp,
                    tmp.open("w", encoding="utf-8", newline="\n") as fh,
                ):
                    n = run_export(memory, fh, filters=filters, with_vectors=vectors, progress=bar)
        except OSError as exc:
            raise BackupError(
                f"writing {target} failed ({exc.strerror or exc}); check the path and free space."
            ) from None
    render.note(f"exported {n} record(s) to {target}")
    _nothing_matched(n, filters)


def _nothing_matched(n: int, filters: Filters) -> None:
    """Warn when a filtered export matched nothing (a misspelt project, say)."""
    from magray.cli import render

    if n == 0 and (filters.layers or filters.project is not None):
        named = [f"--layer {layer}" for layer in filters.layers]
        named += [f"--project {filters.project}"] if filters.project is not None else []
        render.warn(
            f"no memory matched {' '.join(named)}; `magray memory list --json` shows each"
            " memory's layer and project."
        )


def _sweep_exports(target: Path) -> None:
    """Remove the temporary files of exports to ``target`` whose process was killed."""
    import re

    from magray.memory.transfer.manifest import process_running

    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(\d+)\.tmp$")
    for entry in target.parent.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_file() and not process_running(int(match.group(1))):
            entry.unlink(missing_ok=True)


def export_target(path: str) -> Path:
    """The file an export writes, checked before anything is written."""
    from magray.errors import NotFoundError

    if not path.strip():  # Path("") is the current folder
        raise UsageError("PATH is an empty path; give a .jsonl file, or '-' for standard output.")
    target = Path(utf8_arg(path, "the path")).expanduser().absolute()
    if settings().paths.owns(target):
        raise UsageError(
            f"{target} is one of MAGRAY's own files (its store, indexes, models, logs or"
            " settings), which an export would overwrite; give a file outside them, such as"
            " ~/memories.jsonl."
        )
    if target.is_dir():
        raise UsageError(
            f"{target} is a folder; give a file name such as {target / 'memories.jsonl'}."
        )
    if not target.parent.is_dir():
        raise NotFoundError(
            f"no folder {target.parent} to write {target.name} into; create it first."
        )
    return target


@app.command("import")
def import_(
    path: str = typer.Argument(..., help="A .jsonl file (from `memory export`), or '-'."),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Import the valid lines and report the bad ones."
    ),
    json_out: bool = JSON,
) -> None:
    """Import memories from JSON Lines; nothing is imported if any line is bad.

    Example: magray memory import memories.jsonl --skip-bad --json
    """
    from magray.cli import render
    from magray.errors import NotFoundError
    from magray.memory.transfer.jsonl import import_ as run_import

    if not path.strip():
        raise UsageError("PATH is an empty path; give a .jsonl file, or '-' for standard input.")
    if path == "-":
        src = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
    else:
        file = Path(path).expanduser()
        if file.is_dir():
            raise UsageError(f"{file} is a folder; give the .jsonl file `memory export` wrote.")
        if not file.exists():
            raise NotFoundError(f"no file {file} to import.")
        try:  # a pipe (`<(zcat memories.jsonl.gz)`) or a device reads like a file
            src = file.open("r", encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot read {file} ({exc.strerror or exc}); give the .jsonl file"
                " `memory export` wrote, or '-' for standard input."
            ) from None
    try:
        with open_memory() as memory, render.progress("importing") as bar:
            report = run_import(memory, src, skip_bad=skip_bad, progress=bar)
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text; export files are UTF-8 JSON Lines.") from None
    finally:
        if path == "-":
            src.detach()
        else:
            src.close()
    if json_out:
        emit(report.to_json())
        return
    for bad in report.skipped_bad:
        render.warn(f"line {bad.line} skipped: {bad.error}")
    typer.echo(
        f"imported {report.imported} record(s), {report.duplicates} duplicate(s) skipped,"
        f" {len(report.skipped_bad)} bad line(s) skipped, {report.embedded} embedded"
    )
