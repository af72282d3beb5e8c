"""`magray bench ...`: measure MAGRAY's models and retrieval on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from magray.cli.app import new_app

app = new_app(
    "Benchmarks on this machine: memory recall, embedding speed, retrieval quality, the local"
    " LLM and the agent's planner."
)


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


@app.command("locomo")
def locomo(
    dataset: Path = typer.Option(
        ..., "--dataset", help="A LoCoMo JSON file or its folder (e.g. ../shared/data/locomo-dev)."
    ),
    mode: list[str] = typer.Option(
        [], "--mode", help="keyword | vector | hybrid | context (repeatable; default: all)."
    ),
    model: str | None = typer.Option(None, "--model", help="Embedding model (embed.model)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """Turn-level recall@5/10/25/50 per question category on LoCoMo, as its paper scores it.

    A fresh store per conversation, one record per turn; "hybrid" is plain fusion, "context"
    adds neighbouring turns and the session (the default ranking). Also session Hit@1 and
    R@5, and the median recall time at k = 50 (query embedding excluded).

    Example: magray bench locomo --dataset ../shared/data/locomo-dev --json
    """
    from magray.bench.locomo import KS, run_locomo
    from magray.bench.locomo_data import load_locomo
    from magray.cli import render
    from magray.cli.context import settings
    from magray.embed import load_embedder

    conversations = load_locomo(dataset)
    config = settings(**{"embed.model": model})
    embedder = load_embedder(config)
    with render.progress("conversations") as bar:
        report = run_locomo(
            config, conversations, embedder, [m.strip().lower() for m in mode], progress=bar
        )
    if json_out:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    render.note(
        f"{report['conversations']} conversations, {report['questions']} questions,"
        f" {report['records']} records, model {report['model']}"
    )
    heads = " ".join(f"{'R@' + str(k):>6}" for k in KS)
    typer.echo(f"{'mode':<8} {'category':<12} {heads} {'S-Hit@1':>8} {'S-R@5':>6} {'p50 ms':>7}")
    for name, row in report["modes"].items():
        lines = [("overall", row["overall"]), *row["categories"].items()]
        for i, (cat, figures) in enumerate(lines):
            cells = " ".join(f"{figures[f'r@{k}']:>6.1f}" for k in KS)
            tail = ""
            if i == 0:
                s = row["session"]
                tail = f" {s['hit@1']:>8.3f} {s['r@5']:>6.1f} {row['recall_ms_p50']:>7.2f}"
            typer.echo(f"{name if i == 0 else '':<8} {cat:<12} {cells}{tail}")
    st = report["storage"]
    render.note(
        f"store: {st['bytes_per_record']:,} bytes per record, {st['plain_bytes_per_record']:,}"
        f" without sessions and event times ({st['growth_percent']:+.1f} %)"
    )


@app.command("memory")
def memory(
    n: int = typer.Option(10_000, "--n", min=100, max=10_000_000, help="Records to store."),
    dim: int = typer.Option(384, "--dim", min=8, max=4096, help="Vector dimension."),
    queries: int = typer.Option(200, "--queries", min=10, max=10_000, help="Timed queries."),
    backend: list[str] = typer.Option(
        ["sqlite"], "--backend", help="sqlite and/or postgres (repeat to compare)."
    ),
    dsn: str = typer.Option(
        "", "--dsn", help="PostgreSQL to use (default: a bundled server in a temp folder)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """The recall path on N synthetic records vs raw hnswlib and numpy, in one run.

    No model runs: an embedder seam hands precomputed vectors to the public Memory API.
    The store lives in a temporary folder (or a temporary PostgreSQL schema) and is
    deleted afterwards. With two --backend options both run on the same data and the
    JSON object is keyed by backend.

    Example: magray bench memory --n 100000 --backend sqlite --backend postgres --json
    """
    from magray.bench.memory_backends import run_backends

    report = run_backends(n, dim, backend, queries=queries, dsn=dsn or None)
    if json_out:
        typer.echo(json.dumps(report))
        return
    if len(set(backend)) > 1:
        names = list(report)
        keys = list(dict.fromkeys(k for name in names for k in report[name]))
        width = max(len(key) for key in keys)
        typer.echo(f"{'':<{width}}  " + "  ".join(f"{name:>12}" for name in names))
        for key in keys:
            cells = "  ".join(f"{report[name].get(key, '—')!s:>12}" for name in names)
            typer.echo(f"{key:<{width}}  {cells}")
        return
    width = max(len(key) for key in report)
    for key, value in report.items():
        typer.echo(f"{key:<{width}}  {value}")


@app.command("embed")
def embed(
    model: str | None = typer.Option(None, "--model", help="Embedding model (embed.model)."),
    threads: str = typer.Option("1,2", "--threads", help="Comma-separated thread counts."),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="BEIR corpus.jsonl (default ../shared/data/scifact/corpus.jsonl)."
    ),
    limit: int = typer.Option(512, "--limit", min=1, help="Number of texts to embed."),
    repeat: int = typer.Option(
        3, "--repeat", min=1, help="Runs per measurement; the best is kept."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (a stable contract)."),
) -> None:
    """Sentences/s of MAGRAY's embedding path vs a raw ONNX Runtime session, per thread count.

    Example: magray bench embed --model default-int8 --threads 1,2 --json
    """
    from magray.cli.context import settings
    from magray.config.options import BY_KEY
    from magray.embed.bench import bench_corpus, bench_embed
    from magray.errors import UsageError

    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--threads wants numbers like 1,2 (got {threads!r}).") from None
    if not counts or min(counts) < 0:
        raise UsageError(f"--threads wants numbers like 1,2 (got {threads!r}).")
    most = int(BY_KEY["embed.threads"].maximum or 0)
    if max(counts) > most:
        raise UsageError(
            f"--threads takes counts from 0 (all cores) to {most} (got {max(counts)})."
        )
    texts = bench_corpus(corpus, limit)
    report = bench_embed(settings(), model, counts, texts=texts, repeat=max(1, repeat))
    if json_out:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"model {report['model']}, {report['texts']} texts, {report['tokens']} tokens")
    typer.echo(f"{'threads':>7} {'magray/s':>9} {'raw ORT/s':>10} {'ratio':>6}")
    for row in report["rows"]:
        typer.echo(
            f"{row['threads']:>7} {row['magray_per_s']:>9.1f} {row['raw_ort_per_s']:>10.1f}"
            f" {row['ratio']:>6.3f}"
        )


@app.command("llm")
def llm(
    provider: str | None = typer.Option(None, "--provider", help="A local provider (default)."),
    runs: int = typer.Option(3, "--runs", min=1, help="Timed runs per side (median reported)."),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="Tokens to generate per run."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Tokens/s and time to first token: MAGRAY's stack vs raw llama.cpp, same run.

    Example: magray bench llm --json
    """
    import json

    from magray.cli.context import settings as load
    from magray.llm.bench import bench_llm

    result = bench_llm(load(), provider=provider, runs=runs, max_tokens=max_tokens)
    if json_out:
        typer.echo(json.dumps(result))
        return
    m, r = result["magray"], result["raw_llama_cpp"]
    typer.echo(
        f"{result['provider']} ({result['model']}): MAGRAY {m['tokens_per_s']} tok/s,"
        f" first token {m['first_token_ms']} ms · raw llama.cpp {r['tokens_per_s']} tok/s,"
        f" first token {r['first_token_ms']} ms · ratio {result['ratio']} · cached prompt:"
        f" first token {result['cached_prompt']['first_token_ms']} ms"
        + (
            f" · saved prefix: first token {result['saved_prefix']['first_token_ms']} ms"
            if result.get("saved_prefix")
            else ""
        )
    )


@app.command("agent")
def agent(
    provider: list[str] = typer.Option(
        ["local"],
        "--provider",
        help="A provider or a local model name (local, local-tiny, qwen2.5-1.5b); repeat to"
        " compare in one run.",
    ),
    strategy: list[str] = typer.Option(
        ["nearest-tool"],
        "--strategy",
        help="How base models get examples and candidate tools: nearest-tool, nearest, "
        "lexical, fixed (see docs/agent.md). Repeat to compare in one run.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N cases."),
    only: list[str] = typer.Option(
        [], "--only", help="Only the requests containing this text; repeat for more."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (every case included)."),
) -> None:
    """Tool-choice accuracy of the planner on labelled requests (nothing is executed).

    Example: magray bench agent --provider local --provider local-tiny --json
    """
    import json

    from magray.agent.bench import bench_agent
    from magray.cli.context import settings as load

    settings = load()
    results = [
        bench_agent(settings, provider=p, strategies=strategy, limit=limit, only=only)
        for p in provider
    ]
    if json_out:
        out = results[0] if len(results) == 1 else {"providers": results}
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    for result in results:
        typer.echo(f"{result['provider']} ({result['model']})")
        typer.echo(f"{'strategy':<13} {'tool acc':>8} {'intent':>7} {'valid':>6} {'median ms':>10}")
        for name, s in result["strategies"].items():
            typer.echo(
                f"{name:<13} {s['tool_accuracy']:>8.3f} {s['intent_accuracy']:>7.3f}"
                f" {s['valid']:>6.3f} {s['median_ms']:>10.0f}"
            )


@app.command("ask")
def ask(
    provider: list[str] = typer.Option(
        ["local", "local-tiny"],
        "--provider",
        help="A configured provider or a local model name (local, local-tiny, qwen2.5-1.5b);"
        " repeat to compare in one run.",
    ),
    docs: Path | None = typer.Option(
        None, "--docs", help="MAGRAY checkout holding README.md and docs/ (default: here)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    held_out: bool = typer.Option(
        True, "--held-out/--no-held-out", help="Also answer the held-out questions (apart)."
    ),
    report: bool = typer.Option(
        False,
        "--with-benchmarks-page",
        help="Also ingest docs/benchmarks.md, the page that reports this benchmark (it quotes"
        " the questions and answers; left out by default).",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (every answer included)."),
) -> None:
    """Exact-answer accuracy and citations of `ask` on questions about MAGRAY's own docs.

    Example: magray bench ask --provider local --provider local-tiny --json
    """
    from magray.bench.ask import bench_ask
    from magray.cli.context import settings as load

    result = bench_ask(
        load(), providers=provider, docs=docs, limit=limit, held_out=held_out, report=report
    )
    if json_out:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    page = "with" if result["benchmarks_page"] else "without"
    typer.echo(
        f"{result['questions']} questions, {result['chunks']} chunks of docs"
        f" ({page} docs/benchmarks.md)"
    )
    typer.echo(
        f"{'provider':<14} {'model':<22} {'accuracy':>8} {'cited':>6} {'recalled':>8}"
        f" {'unknown':>7} {'median ms':>10} {'first ms':>9}"
    )
    for name, s in result["providers"].items():
        rows = [(name, s)] + ([(" held out", s["held_out"])] if "held_out" in s else [])
        for label, r in rows:
            typer.echo(
                f"{label:<14} {r['model']:<22} {r['accuracy'] or 0:>8.3f}"
                f" {r['cited_share'] or 0:>6.3f} {r['recalled_share'] or 0:>8.3f}"
                f" {r['unknown_accuracy'] or 0:>7.3f} {r['median_ms'] or 0:>10.0f}"
                f" {r['median_first_token_ms'] or 0:>9.0f}"
            )
