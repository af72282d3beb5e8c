"""`magray import --format chatgpt|claude|jsonl-chat FILE`: past conversations as memories."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from magray.cli.context import nonblank, open_memory, parse_layer
from magray.cli.memory import check_utf8


def import_conversations(
    file: Path = typer.Argument(..., help="The exported conversations file."),
    fmt: str = typer.Option(
        ..., "--format", metavar="FORMAT", help="chatgpt | claude | jsonl-chat."
    ),
    per: str = typer.Option("turn", "--per", metavar="UNIT", help="turn (default) | exchange."),
    layer: str = typer.Option("assets", "--layer", help="interact | insights | assets."),
    project: str | None = typer.Option(
        None, "--project", help="Project the turns belong to.", callback=nonblank
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import a chat history: one memory per turn (or exchange) with speaker, session and time.

    Incremental by content hash: importing the same file again adds nothing. Imported turns
    (kind "turn") are recalled by search, ask and chat.

    Example: magray import --format chatgpt conversations.json --per exchange
    """
    from magray.cli import render
    from magray.memory.conversation.importer import import_conversations as run_import

    check_utf8(project=project)
    target = parse_layer(layer)
    with open_memory() as memory, render.progress("importing turns") as bar:
        report = run_import(
            memory, file, fmt.strip().lower(), per=per, layer=target, project=project,
            progress=bar,
        )  # fmt: skip
        memory.sync_indexes()
    if json_out:
        data = {
            "format": fmt,
            "per": per,
            "layer": str(target),
            "project": project,
            "conversations": report.conversations,
            "turns": report.turns,
            "added": report.added,
            "unchanged": report.unchanged,
        }
        typer.echo(json.dumps(data, ensure_ascii=False))
        return
    typer.echo(
        f"{report.conversations} conversation(s), {report.turns} turn(s): {report.added}"
        f" record(s) added, {report.unchanged} already known, in {target}"
    )
