"""`magray ingest PATH...`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from magray.cli.context import nonblank, open_memory, parse_layer, printable
from magray.cli.memory import check_utf8

if TYPE_CHECKING:
    from magray.memory.ingest.pipeline import IngestReport


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders to ingest."),
    layer: str = typer.Option("assets", "--layer", help="interact | insights | assets."),
    project: str | None = typer.Option(
        None, "--project", help="Project the chunks belong to.", callback=nonblank
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Ingest files and folders into memory (respects .gitignore; incremental by content hash).

    Files are stored by absolute path; a file is forgotten only when it is gone from a
    folder named here.

    Example: magray ingest README.md docs --project magray
    """
    import sys

    from magray.cli import render
    from magray.memory.ingest.pipeline import ingest as run_ingest
    from magray.views import ingest_json

    check_utf8(project=project)
    target = parse_layer(layer)
    with (
        _own_truncation_summary(),
        open_memory() as memory,
        render.progress("ingesting files") as bar,
    ):
        report = run_ingest(memory, paths, layer=target, project=project, progress=bar)
        memory.sync_indexes()
    _check_something_read(paths, report)
    onnx = sys.modules.get("magray.embed.onnx")  # loaded only when something was embedded
    truncated = onnx.truncated_count() if onnx is not None else 0
    data = ingest_json(report, layer=str(target), project=project, truncated=truncated)
    if json_out:
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    f, c = data["files"], data["chunks"]
    typer.echo(
        f"files: {f['added']} added, {f['updated']} updated, {f['unchanged']} unchanged,"
        f" {f['removed']} removed · chunks: {c['added']} added, {c['kept']} kept,"
        f" {c['removed']} removed"
    )
    for uri, reason in report.skipped:
        render.note(f"skipped {printable(uri)}: {reason}")
    for uri in report.restored:
        render.note(f"restored the missing chunks of {printable(uri)}")
    for uri in report.removed:
        render.note(f"forgot {printable(uri)}: it is no longer in the folder it was ingested from")
    if truncated:
        render.note(
            f"{truncated} chunk(s) were longer than the embedding model's limit and their"
            " vectors cover only the beginning; keyword search sees all of the text (a model"
            " with a longer context helps: see `magray models list`)."
        )


@contextmanager
def _own_truncation_summary() -> Iterator[None]:
    """Leave out the embedder's first-truncation warning: ingest ends with one summary."""

    def keep(record: logging.LogRecord) -> bool:
        return not getattr(record, "magray_truncation", False)

    log = logging.getLogger("magray")
    log.addFilter(keep)
    try:
        yield
    finally:
        log.removeFilter(keep)


def _check_something_read(paths: list[Path], report: IngestReport) -> None:
    """Files named one by one of which none could be read are an error, not a run that
    did nothing and exited 0 (``magray ingest paper.pdf``); a folder may hold nothing."""
    from magray.errors import MagrayError

    files = (
        report.files_added + report.files_updated + report.files_unchanged + report.files_removed
    )
    if files or not report.skipped or any(p.is_dir() for p in paths):
        return
    why = "; ".join(f"{printable(uri)}: {reason}" for uri, reason in report.skipped[:3])
    more = f" and {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
    raise MagrayError(
        f"nothing was ingested ({why}{more}); give text files: Markdown, code or plain text"
        " of at most 2 MB."
    )
