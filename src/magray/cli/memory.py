"""`magray memory ...`: add, search, get, list, forget, stats, reindex, verify and lifecycle."""

from __future__ import annotations

import json
from typing import Any

import typer

from magray.cli.app import new_app
from magray.cli.context import nonblank, open_memory, parse_layer, parse_time, read_text, utf8_arg
from magray.views import promote_json, search_json, texts_of
from magray.views import record_json as record_json  # memory_edit shares it

app = new_app("Remember, recall and maintain the three-layer memory.")

JSON = typer.Option(False, "--json", help="Print JSON (a stable contract).")


def check_utf8(**options: str | list[str] | None) -> None:
    """Refuse option values that are not UTF-8 (``--tag`` etc., named by their flag)."""
    for name, value in options.items():
        for item in [value] if isinstance(value, str) else value or []:
            utf8_arg(item, "--" + name)


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


@app.command("add")
def add(
    text: str | None = typer.Argument(
        None, help="The text to remember (read from standard input when left out or '-')."
    ),
    layer: str | None = typer.Option(
        None,
        "--layer",
        help="interact | insights | assets (default: the memory.add_layer setting, assets).",
    ),
    tag: list[str] = typer.Option([], "--tag", help="A tag (repeatable)."),
    kind: str = typer.Option("note", "--kind", help="What it is: note, fact, code, ..."),
    project: str | None = typer.Option(
        None, "--project", help="Project it belongs to.", callback=nonblank
    ),
    session: str | None = typer.Option(
        None, "--session", help="Session/conversation id.", callback=nonblank
    ),
    importance: float = typer.Option(0.5, "--importance", help="0–1, how much it matters."),
    pin: bool = typer.Option(False, "--pin", help="Pinned records never expire."),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="ISO",
        help="When it happened (ISO date/time, UTC unless given); default: now.",
    ),
    json_out: bool = JSON,
) -> None:
    """Remember TEXT (or standard input) — kept for good in Assets unless --layer says.

    Example: magray memory add "The staging DB is on port 5433" --tag infra
    """
    from magray.memory.records import NewRecord

    check_utf8(tag=tag, kind=kind, project=project, session=session)
    body = read_text(text)
    memory = open_memory()
    item = NewRecord(
        text=body,
        layer=parse_layer(layer or memory.settings.memory.add_layer),
        kind=kind,
        tags=tuple(tag),
        project=project,
        session=session,
        importance=importance,
        pinned=pin,
        occurred_at=parse_time(at, "--at"),
    )
    with memory:
        result = memory.remember(item)
        keep = _how_long(memory.settings, result.layer, pinned=pin)
    if json_out:
        emit(result.to_dict())
    else:
        verb = "remembered" if result.created else "already known (access bumped)"
        typer.echo(f"{result.id}  {verb} in {result.layer} ({keep})")


def _how_long(settings: Any, layer: Any, *, pinned: bool) -> str:
    """How long a record of ``layer`` is kept, in words."""
    from magray.memory.records import Layer

    if pinned or layer is Layer.ASSETS:
        return "kept until you forget it"
    if layer is Layer.INTERACT:
        hours = settings.memory.ttl_interact_hours
        span = f"{hours:g} h"
    else:
        days = settings.memory.ttl_insights_days
        span = f"{days:g} days"
    if span.startswith("0 "):
        return "kept until you forget it"
    return f"expires after {span} unless it is recalled often enough to be promoted, or pinned"


@app.command("search")
def search(
    query: str | None = typer.Argument(
        None, help="What to look for (read from standard input when left out or '-')."
    ),
    k: int = typer.Option(10, "-k", help="How many hits."),
    layer: list[str] = typer.Option([], "--layer", help="Restrict to a layer (repeatable)."),
    tag: list[str] = typer.Option([], "--tag", help="Require a tag (repeatable)."),
    kind: str | None = typer.Option(None, "--kind", help="Only this kind."),
    project: str | None = typer.Option(
        None, "--project", help="Only this project.", callback=nonblank
    ),
    session: str | None = typer.Option(
        None, "--session", help="Only this session.", callback=nonblank
    ),
    after: str | None = typer.Option(None, "--created-after", help="ISO date/time."),
    before: str | None = typer.Option(None, "--created-before", help="ISO date/time."),
    mode: str | None = typer.Option(None, "--mode", help="hybrid | vector | keyword."),
    rerank: bool | None = typer.Option(None, "--rerank/--no-rerank", help="Cross-encoder rerank."),
    explain: bool = typer.Option(False, "--explain", help="Show each hit's component ranks."),
    include_exchanges: bool = typer.Option(
        False,
        "--include-exchanges",
        help="Also search stored question/answer exchanges and agent runs (left out by default).",
    ),
    json_out: bool = JSON,
) -> None:
    """Recall memories by meaning and keywords.

    Example: magray memory search "database port" --layer insights --explain
    """
    from magray.cli import render
    from magray.errors import UsageError
    from magray.memory.records import GENERATED_KINDS, Filters, Query, SearchMode

    if mode is not None:
        mode = mode.strip().lower()
        if mode not in {m.value for m in SearchMode}:
            choices = ", ".join(m.value for m in SearchMode)
            raise UsageError(f"--mode must be one of {choices} (got {mode!r}).")
    text = read_text(query, "the query")
    check_utf8(tag=tag, kind=kind, project=project, session=session)
    filters = Filters(
        layers=tuple(parse_layer(x) for x in layer),
        tags=tuple(tag),
        kind=kind,
        project=project,
        session=session,
        created_after=parse_time(after, "--created-after"),
        created_before=parse_time(before, "--created-before"),
        exclude_kinds=() if include_exchanges or kind else GENERATED_KINDS,
    )
    overrides = {"search.mode": mode, "search.rerank": rerank}
    with open_memory(reading=True, searching=True, **overrides) as memory:
        q = Query(
            text=text,
            k=k,
            mode=SearchMode(memory.settings.search.mode),
            filters=filters,
            rerank=memory.settings.search.rerank,
            explain=explain,
        )
        hits = memory.recall(q)
    if json_out:
        emit(search_json(q.text, hits))
    else:
        render.hits(hits, explain=explain)


@app.command("get")
def get(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    json_out: bool = JSON,
) -> None:
    """Show one memory.

    Example: magray memory get 01jd3x
    """
    from magray.cli import render

    utf8_arg(id, "the id")
    with open_memory(reading=True) as memory:
        record = memory.get(id)
    if json_out:
        emit(record_json(record))
    else:
        render.record(record)


@app.command("list")
def list_(
    layer: list[str] = typer.Option([], "--layer", help="Restrict to a layer (repeatable)."),
    limit: int = typer.Option(20, "--limit", min=1, help="How many (newest first)."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many."),
    project: str | None = typer.Option(
        None, "--project", help="Only this project.", callback=nonblank
    ),
    json_out: bool = JSON,
) -> None:
    """List memories, newest first.

    Example: magray memory list --layer assets --limit 5
    """
    from magray.cli import render
    from magray.memory.records import Filters

    check_utf8(project=project)
    filters = Filters(layers=tuple(parse_layer(x) for x in layer), project=project)
    with open_memory(reading=True) as memory:
        records = memory.list_records(filters, limit=limit, offset=offset)
    if json_out:
        emit({"records": [record_json(r) for r in records]})
    else:
        render.records(records)


@app.command("forget")
def forget(
    id: str = typer.Argument(..., help="Memory id (or a unique prefix)."),
    json_out: bool = JSON,
) -> None:
    """Delete one memory for good.

    Example: magray memory forget 01jd3x
    """
    utf8_arg(id, "the id")
    with open_memory() as memory:
        record = memory.forget(id)
    if json_out:
        emit({"id": record.id, "forgotten": True})
    else:
        typer.echo(f"{record.id}  forgotten")


@app.command("stats")
def stats(json_out: bool = JSON) -> None:
    """Records and bytes per layer, index health, model.

    Example: magray memory stats --json
    """
    from magray.cli import render
    from magray.cli.context import settings

    with open_memory(reading=True) as memory:
        data = memory.stats()
    home = settings()
    if home.memory.backend == "sqlite" and not home.paths.memory_db.exists():
        data["path"] = str(home.paths.memory_db)  # an empty home: where the store will be
        data["db_bytes"] = 0
    if json_out:
        emit(data)
    else:
        render.stats(data)


@app.command("reindex")
def reindex(
    reembed: bool = typer.Option(
        False, "--reembed", help="Re-embed records whose vectors are not from the active model."
    ),
    json_out: bool = JSON,
) -> None:
    """Rebuild the keyword and vector indexes from the store (and re-embed with --reembed).

    Example: magray memory reindex --reembed
    """
    from magray.cli import render
    from magray.memory.maintenance import reindex as run_reindex

    with open_memory() as memory, render.progress("re-embedding") as bar:
        if not reembed:
            memory.check_model()
        result = run_reindex(memory, reembed_vectors=reembed, progress=bar)
    if json_out:
        emit(result)
    else:
        per_layer = ", ".join(f"{layer} {n}" for layer, n in result["indexed"].items())
        typer.echo(f"reindexed: {per_layer}; re-embedded {result['reembedded']} record(s)")


@app.command("verify")
def verify(json_out: bool = JSON) -> None:
    """Check the store and its indexes; exits 1 on any inconsistency.

    Example: magray memory verify --json
    """
    from magray.memory.maintenance import verify as run_verify

    with open_memory(reading=True) as memory:
        report = run_verify(memory)
    if json_out:
        emit({"ok": report.ok, "problems": report.problems, "checked": report.checked})
    else:
        for problem in report.problems:
            typer.echo(f"problem: {problem}")
        typer.echo("ok" if report.ok else f"{len(report.problems)} problem(s) found")
    if not report.ok:
        raise typer.Exit(1)


@app.command("promote")
def promote(
    dry_run: bool = typer.Option(False, "--dry-run", help="Explain decisions, change nothing."),
    json_out: bool = JSON,
) -> None:
    """Promote records Interact → Insights → Assets by rules plus a learned scorer.

    Example: magray memory promote --dry-run
    """
    from magray.cli import render
    from magray.memory.lifecycle.run import promote as run_promote

    with open_memory() as memory:
        report = run_promote(memory, dry_run=dry_run)
        texts = texts_of(memory, [d.record_id for d in [*report.promoted, *report.kept]])
    if json_out:
        emit(promote_json(report, dry_run=dry_run, texts=texts))
        return
    render.decisions(report.promoted, report.kept, dry_run=dry_run, model=report.model, texts=texts)


@app.command("expire")
def expire(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would expire."),
    json_out: bool = JSON,
) -> None:
    """Delete unpinned records whose layer TTL has passed unpromoted.

    Example: magray memory expire --dry-run
    """
    from magray.memory.lifecycle.run import expire as run_expire
    from magray.views import expire_json

    with open_memory() as memory:
        planned = run_expire(memory, dry_run=True)
        texts = texts_of(memory, [e.record_id for e in planned.expired])
        report = planned if dry_run else run_expire(memory, dry_run=False)
    data = expire_json(report, dry_run=dry_run, texts=texts)
    items = data["expired"]
    if json_out:
        emit(data)
        return
    verb = "would expire" if dry_run else "expired"
    for item in items:
        typer.echo(f"{item['id']}  {verb}: {item['reason']}")
        if item["text"]:
            typer.echo(f"    {_short(str(item['text']))}")
    typer.echo(f"{len(items)} record(s) {verb}")


def _short(text: str, width: int = 76) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


# backup, restore, export, import (and pin, move, edit, clear) live in their own modules;
# importing them registers them.
from magray.cli import memory_data as _memory_data  # noqa: E402, F401
from magray.cli import memory_edit as _memory_edit  # noqa: E402, F401
from magray.cli import memory_migrate as _memory_migrate  # noqa: E402, F401
