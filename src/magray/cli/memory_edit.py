"""`magray memory pin|unpin|move|edit|clear`: curating what is stored by hand.

Registered on the ``magray memory`` group by ``magray.cli.memory`` importing this module.
"""

from __future__ import annotations

import sys

import typer

from magray.cli.context import open_memory, parse_layer, read_text, utf8_arg
from magray.cli.memory import JSON, app, emit, record_json
from magray.errors import UsageError


def _show(record: object, verb: str, json_out: bool) -> None:
    from magray.memory.records import Record

    assert isinstance(record, Record)
    if json_out:
        emit(record_json(record))
    else:
        typer.echo(f"{record.id}  {verb}")


@app.command("pin")
def pin(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    json_out: bool = JSON,
) -> None:
    """Pin a memory: it never expires, whatever its layer.

    Example: magray memory pin k3v0q8
    """
    utf8_arg(id, "the id")
    with open_memory() as memory:
        before = memory.get(id).pinned
        record = memory.pin(id, True)
    done = "already pinned; nothing changed" if before else "pinned"
    _show(record, f"{done} in {record.layer} (never expires)", json_out)


@app.command("unpin")
def unpin(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    json_out: bool = JSON,
) -> None:
    """Unpin a memory: its layer's TTL applies again.

    Example: magray memory unpin k3v0q8
    """
    utf8_arg(id, "the id")
    with open_memory() as memory:
        before = memory.get(id).pinned
        record = memory.pin(id, False)
    _show(
        record, f"unpinned in {record.layer}" if before else "not pinned; nothing changed", json_out
    )


@app.command("move")
def move(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    to: str | None = typer.Argument(None, metavar="LAYER", help="The layer (the same as --layer)."),
    layer: str | None = typer.Option(None, "--layer", help="interact | insights | assets."),
    json_out: bool = JSON,
) -> None:
    """Move a memory to another layer by hand (its TTL counts from now).

    Example: magray memory move k3v0q8 --layer assets   (or: magray memory move k3v0q8 assets)
    """
    utf8_arg(id, "the id")
    if to is not None and layer is not None and to != layer:
        raise UsageError(f"two layers given ({to} and --layer {layer}); give one.")
    chosen = to if to is not None else layer
    if chosen is None:
        raise UsageError(
            "give the layer to move it to: `magray memory move ID --layer assets`"
            " (interact, insights or assets)."
        )
    target = parse_layer(chosen)
    with open_memory() as memory:
        before = memory.get(id).layer
        record = memory.move(id, target)
    _show(
        record,
        f"already in {target}; nothing changed" if before is target else f"moved to {target}",
        json_out,
    )


@app.command("edit")
def edit(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    text: str | None = typer.Argument(
        None, help="The new text (read from standard input when left out or '-')."
    ),
    json_out: bool = JSON,
) -> None:
    """Replace a memory's text (re-embedded), keeping its id, layer, tags and history.

    Example: magray memory edit k3v0q8 "The staging DB listens on port 5434"
    """
    utf8_arg(id, "the id")
    body = read_text(text, "the new text")
    with open_memory() as memory:
        record = memory.edit(id, body)
    _show(record, "edited", json_out)


@app.command("clear")
def clear(
    layer: str = typer.Option(..., "--layer", help="The layer to empty."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would go; change nothing."),
    json_out: bool = JSON,
) -> None:
    """Forget every memory of one layer (asks first; pinned ones go too).

    Example: magray memory clear --layer interact --dry-run
    """
    from magray.errors import UsageError
    from magray.memory.records import Filters

    target = parse_layer(layer)
    with open_memory() as memory:
        planned = memory.forget_where(Filters(layers=(target,)), dry_run=True)
        if not dry_run and planned and not yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    f"clearing {target} forgets {len(planned)} record(s); add --yes to confirm."
                )
            typer.confirm(f"Forget all {len(planned)} record(s) of {target}?", abort=True, err=True)
        gone = planned if dry_run else memory.forget_where(Filters(layers=(target,)))
    if json_out:
        emit({"layer": str(target), "dry_run": dry_run, "forgotten": len(gone)})
    else:
        verb = "would forget" if dry_run else "forgot"
        typer.echo(f"{verb} {len(gone)} record(s) of {target}")
