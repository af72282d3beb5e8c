"""`magray bench ...`: measure MAGRAY's models and retrieval on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from magray.cli.app import new_app

app = new_app("Benchmarks: embedding speed and retrieval quality on this machine.")


@app.command("retrieval")
def retrieval(
    dataset: Path = typer.Option(..., "--dataset", help="A BEIR-format dataset directory."),
    mode: list[str] = typer.Option(
        [],
        "--mode",
        help="keyword | vector | hybrid | rerank (repeatable; default: all available).",
    ),
    model: str | None = typer.Option(None, "--model", help="Embedding model (embed.model)."),
    limit_queries: int | None = typer.Option(
        None, "--limit-queries", help="Score only the first N judged queries."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """Score nDCG@10 and Recall@100 of each search mode on a BEIR dataset.

    The corpus is stored once under <data dir>/bench/<dataset>/<model>/ and reused while it
    is unchanged.

    Example: magray bench retrieval --dataset ../shared/data/scifact --json
    """
    from magray.bench.beir import load_dataset
    from magray.bench.retrieval import bench_settings, run_benchmark
    from magray.cli import render
    from magray.cli.context import settings
    from magray.memory.service import Memory

    data = load_dataset(dataset)
    config = bench_settings(settings(**{"embed.model": model}), data.name)
    with (
        Memory(config, warn=render.warn) as memory,
        render.progress(f"embedding {data.name}") as bar,
    ):
        report = run_benchmark(
            memory,
            data,
            [m.strip().lower() for m in mode],
            limit_queries=limit_queries,
            progress=bar,
        )
    if json_out:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    render.note(
        f"{report['documents']} documents ({'reused' if report['reused_vectors'] else 'embedded'}"
        f" {report['embedded'] or report['documents']} vectors, {report['ingest_seconds']} s),"
        f" {report['queries']} queries, model {report['model']}"
    )
    typer.echo(f"{'mode':<10} {'nDCG@10':>8} {'R@100':>8} {'ms/query':>9}")
    for name, row in report["modes"].items():
        typer.echo(
            f"{name:<10} {row['ndcg_at_10']:>8.4f} {row['recall_at_100']:>8.4f}"
            f" {row['ms_per_query']:>9.1f}"
        )
