"""The only place that formats output for humans (rich tables, panels, progress)."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # rich.progress loads only when a bar is shown
    from rich.progress import Progress


class _Console(Console):
    """rich's console, but a reader that went away (``magray memory list | head -1``) ends
    the command like one printed with ``typer.echo``: exit 0, as MagrayGroup maps it."""

    def on_broken_pipe(self) -> None:
        import errno
        import os

        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # what rich does, so the final flush passes
        os.close(devnull)
        raise BrokenPipeError(errno.EPIPE, "the reader of standard output went away")


out = _Console(highlight=False, soft_wrap=True)
err = _Console(stderr=True, highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    """A yellow warning line on stderr."""
    err.print(f"[yellow]warning:[/] {escape(message)}")


def note(message: str) -> None:
    """A dim informational line on stderr."""
    err.print(f"[dim]{escape(message)}[/]")


def config_table(rows: Sequence[Mapping[str, Any]], paths: Mapping[str, str]) -> None:
    table = Table(show_header=True, header_style="bold")
    table.add_column("setting")
    table.add_column("value")
    table.add_column("from", style="dim")
    for row in rows:
        value = repr(row["value"])
        if row.get("effective") not in (None, row["value"]):  # what `auto` means here
            value += f" ({row['effective']} for this store)"
        table.add_row(row["key"], value, row["source"])
    out.print(table)
    for name, path in paths.items():
        out.print(f"[dim]{name}:[/] {path}")


HEARTBEAT_S = 30.0  # a piped long job says how far it got this often


class ProgressBar:
    """A progress callback: a rich bar on a TTY; when stderr is piped, one plain line
    every ``HEARTBEAT_S`` seconds of a long job (so a log shows it is alive), else quiet."""

    def __init__(self, progress: Progress | None, label: str) -> None:
        import time

        self._progress = progress
        self._label = label
        self._task = progress.add_task(label, total=None) if progress else None
        self._clock = time.monotonic
        self._last = self._clock()

    def __call__(self, done: int, total: int | None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=done, total=total)
            return
        now = self._clock()
        if now - self._last >= HEARTBEAT_S:
            self._last = now
            of = f"/{total}" if total else ""
            err.print(f"[dim]{self._label}: {done}{of}[/]")


@contextmanager
def progress(label: str) -> Iterator[ProgressBar]:
    """Context manager yielding a ``(done, total)`` callback that draws a progress bar."""
    if not sys.stderr.isatty():
        yield ProgressBar(None, label)
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        yield ProgressBar(bar, label)


class StatusLine:
    """What a slow model is doing, on stderr: a spinner with the step on a terminal, one
    plain line per lasting step when piped (``magray.llm.status`` reports to it)."""

    def __init__(self, live: bool | None = None) -> None:
        self.live = sys.stderr.isatty() if live is None else live
        self._spinner: Any = None

    def __call__(self, step: Any) -> None:
        if step is None:
            if self._spinner is not None:
                self._spinner.stop()
                self._spinner = None
            return
        if not self.live:
            if not step.transient:
                sys.stderr.write(f"magray: {step.text}…\n")
                sys.stderr.flush()
            return
        if self._spinner is None:
            self._spinner = err.status(f"{escape(step.text)}…")
            self._spinner.start()
        else:
            self._spinner.update(f"{escape(step.text)}…")


def _snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def hits(items: Sequence[Any], *, explain: bool) -> None:
    """Search hits: rank, id, layer, score, snippet (and component ranks with explain)."""
    if not items:
        err.print("[dim]no memories matched.[/]")
        return
    for rank, hit in enumerate(items, 1):
        r = hit.record
        where = f" [dim]{r.source.uri}:{r.source.line_start}[/]" if r.source else ""
        out.print(
            f"[bold]{rank:>2}.[/] [cyan]{r.id}[/] [magenta]{r.layer}[/]"
            f" [dim]{hit.score:.4f}[/]{where}"
        )
        out.print(f"    {_snippet(r.text)}", markup=False)
        e = hit.explanation
        if explain and e is not None:
            parts = [
                f"vector #{e.vector_rank} ({e.vector_score:.3f})" if e.vector_rank else "vector —",
                f"bm25 #{e.keyword_rank} ({e.keyword_score:.2f})" if e.keyword_rank else "bm25 —",
                f"layer×{e.layer_weight:g}",
                f"recency×{e.recency_factor:.3f}",
            ]
            if e.rerank_score is not None:
                parts.append(f"rerank {e.rerank_score:.3f}")
            out.print("    [dim]" + " · ".join(parts) + "[/]")


def record(r: Any) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="dim")
    table.add_column()
    for name in ("id", "layer", "kind", "tags", "project", "session", "importance", "pinned"):
        value = getattr(r, name)
        table.add_row(name, ", ".join(value) if isinstance(value, tuple) else str(value))
    table.add_row("accesses", str(r.access_count))
    if getattr(r, "occurred_at", None) is not None:
        from magray.views import iso

        table.add_row("happened", iso(r.occurred_at) or "?")
    if r.source is not None:
        table.add_row("source", f"{r.source.uri} lines {r.source.line_start}–{r.source.line_end}")
    out.print(table)
    out.print(r.text, markup=False)


def records(items: Sequence[Any]) -> None:
    if not items:
        err.print("[dim]no memories.[/]")
        return
    for r in items:
        pin = " 📌" if r.pinned else ""
        out.print(f"[cyan]{r.id}[/] [magenta]{r.layer:<8}[/]{pin} {_snippet(r.text, 100)}")


def stats(data: Mapping[str, Any]) -> None:
    table = Table(show_header=True, header_style="bold")
    for col in ("layer", "records", "pinned", "text bytes", "vector bytes", "indexed", "backlog"):
        table.add_column(col)
    index = data.get("index", {})
    for layer, row in data["layers"].items():
        health = index.get(layer, {}) if isinstance(index, dict) else {}
        table.add_row(
            layer,
            str(row["records"]),
            str(row["pinned"]),
            str(row["text_bytes"]),
            str(row["vector_bytes"]),
            str(health.get("indexed", "—")),
            str(health.get("backlog", "—")),
        )
    out.print(table)
    model = data["model"]
    out.print(f"[dim]store:[/] {data['path']} ({data['db_bytes']} bytes)")
    stored = model["stored"] or "none yet"
    dim = model["dim"] or "—"
    out.print(f"[dim]model:[/] stored={stored} dim={dim} active={model['active']}")
    if isinstance(index, dict) and "error" in index:
        warn(index["error"])
        return
    for layer, health in index.items() if isinstance(index, dict) else ():
        expected, indexed = health.get("expected"), health.get("searchable")
        if expected is not None and indexed is not None and expected != indexed:
            warn(
                f"the {layer} vector index finds {indexed} vector(s) for {expected} record(s);"
                " run `magray memory verify`, then `magray memory reindex`."
            )


def decisions(
    promoted: Sequence[Any],
    kept: Sequence[Any],
    *,
    dry_run: bool,
    model: Mapping[str, Any],
    texts: Mapping[str, str] | None = None,
) -> None:
    """Promotion decisions with the records' text (shortened) and their reasons."""
    texts = texts or {}
    verb = "would promote" if dry_run else "promoted"

    def text_of(rid: str) -> None:
        if rid in texts:
            flat = " ".join(texts[rid].split())
            out.print(f"    {escape(flat if len(flat) <= 76 else flat[:75] + '…')}", markup=True)

    for d in promoted:
        out.print(f"[cyan]{d.record_id}[/] [green]{verb}[/] {d.from_layer} → {d.to_layer}")
        text_of(d.record_id)
        for reason in d.reasons:
            out.print(f"    [dim]{escape(reason)}[/]", markup=True)
    if dry_run:
        for d in kept:
            out.print(f"[cyan]{d.record_id}[/] stays in {d.from_layer} ({d.score:.2f})")
            text_of(d.record_id)
            out.print(f"    [dim]{escape('; '.join(d.reasons))}[/]")
    source = model.get("source", "?")
    out.print(f"{len(promoted)} {verb}, {len(kept)} kept · scorer: {source}")


_noted: set[str] = set()


def note_once(message: str) -> None:
    """A note shown at most once per process (e.g. per chat session)."""
    if message not in _noted:
        _noted.add(message)
        note(message)


def sources(result: Any) -> None:
    """The memories an answer cited as ``[n] id layer source`` (or, if it cited none, the
    memories it was grounded on)."""
    index = {m.id: (i, m) for i, m in enumerate(result.memories, 1)}
    shown = result.cited or [m.id for m in result.memories]
    if not shown:
        return
    err.print("[dim]cited:[/]" if result.cited else "[dim]grounded on:[/]")
    for memory_id in shown:
        i, m = index[memory_id]
        where = f" {m.uri}" if m.uri else ""
        err.print(f"[dim]  [{i}] {m.id} {m.layer}{where}[/]")


def turns(items: Sequence[Any]) -> None:
    if not items:
        err.print("[dim]no conversations yet.[/]")
        return
    for t in items:
        when = datetime.fromtimestamp(t.at, UTC).strftime("%Y-%m-%d %H:%M")
        out.print(
            f"[dim]{when}[/] [cyan]{t.conversation_id}[/] {t.provider}/{t.model}"
            f" [dim]{t.prompt_tokens}+{t.completion_tokens} tokens, {t.latency_ms:.0f} ms[/]"
        )
        out.print(f"  [bold]Q:[/] {_snippet(t.prompt, 120)}")
        out.print(f"  [bold]A:[/] {_snippet(t.answer, 240)}")
