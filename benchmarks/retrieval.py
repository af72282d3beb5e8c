"""Retrieval quality of MAGRAY's search modes on BEIR SciFact (train claims); prints JSON.

    .venv/bin/python benchmarks/retrieval.py                 # every mode, current settings
    .venv/bin/python benchmarks/retrieval.py --model default-int8
    .venv/bin/python benchmarks/retrieval.py --sweep         # grid-search fusion parameters

The named baselines are the single modes of the same run (keyword = BM25, vector = dense):
hybrid is reported with its margin over the better of the two. The corpus is stored once
under ``$MAGRAY_HOME/data/bench/scifact/<model>/`` and reused by later runs.

``--sweep`` retrieves each query's vector and BM25 candidate lists once and replays the
fusion step for every parameter combination (weighted RRF and a min-max-normalised convex
combination), on all judged queries and on two halves of them (even/odd position) so that
a setting that only wins on one half stands out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from magray.bench.beir import Dataset, load_dataset
from magray.bench.retrieval import (
    QueryRankings,
    bench_settings,
    collect_rankings,
    ingest,
    query_ids,
    run_benchmark,
    score_fusion,
)
from magray.config import load_settings
from magray.memory.records import Explanation
from magray.memory.search.fusion import Candidate, FusionParams, fuse
from magray.memory.service import Memory

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = REPO.parent / "shared" / "data" / "scifact"

RRF_K = (5.0, 10.0, 20.0, 40.0, 60.0, 100.0)
VECTOR_WEIGHT = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # keyword weight 1: only the ratio matters
CONVEX_ALPHA = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)  # weight of the vector side
POOLS = (50, 100, 200)


def _truncate(rankings: Sequence[QueryRankings], pool: int) -> list[QueryRankings]:
    return [
        QueryRankings(r.query_id, r.vector[:pool], r.keyword[:pool], r.candidates) for r in rankings
    ]


def convex(
    vector: Sequence[tuple[int, float]],
    keyword: Sequence[tuple[int, float]],
    candidates: Mapping[int, Candidate],
    alpha: float,
) -> list[tuple[int, float, Explanation]]:
    """α·minmax(cosine) + (1−α)·minmax(BM25); a document absent from a list scores 0 there."""

    def norm(pairs: Sequence[tuple[int, float]]) -> dict[int, float]:
        kept = [(n, s) for n, s in pairs if n in candidates]
        if not kept:
            return {}
        lo, hi = min(s for _, s in kept), max(s for _, s in kept)
        span = hi - lo
        return {n: (s - lo) / span if span > 0 else 1.0 for n, s in kept}

    v, k = norm(vector), norm(keyword)
    scored = [
        (n, alpha * v.get(n, 0.0) + (1 - alpha) * k.get(n, 0.0), Explanation())
        for n in dict.fromkeys([*v, *k])
    ]
    scored.sort(key=lambda t: (-t[1], t[0]))
    return scored


def sweep(memory: Memory, dataset: Dataset, ids: list[str]) -> list[dict[str, Any]]:
    started = time.perf_counter()
    full, labels = collect_rankings(memory, dataset, ids, pool=max(POOLS))
    print(f"collected rankings in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    halves = (full[0::2], full[1::2])
    rows: list[dict[str, Any]] = []

    def score(name: str, params: dict[str, Any], fn: Any, pool: int) -> None:
        parts = [_truncate(full, pool), *(_truncate(h, pool) for h in halves)]
        (ndcg, recall), (a, _), (b, _) = (score_fusion(p, labels, dataset, fn) for p in parts)
        rows.append(
            {
                "fusion": name,
                **params,
                "pool": pool,
                "ndcg_at_10": round(ndcg, 4),
                "recall_at_100": round(recall, 4),
                "ndcg_half_a": round(a, 4),
                "ndcg_half_b": round(b, 4),
            }
        )

    for pool in POOLS:
        score("vector", {}, lambda v, k, c, now: fuse(v, [], c, FusionParams(), now), pool)
        score("keyword", {}, lambda v, k, c, now: fuse([], k, c, FusionParams(), now), pool)
        for rrf_k, weight in itertools.product(RRF_K, VECTOR_WEIGHT):
            params = FusionParams(rrf_k=rrf_k, vector_weight=weight, keyword_weight=1.0)

            def rrf(v: Any, k: Any, c: Any, now: float, p: FusionParams = params) -> Any:
                return fuse(v, k, c, p, now)

            score("rrf", {"rrf_k": rrf_k, "vector_weight": weight}, rrf, pool)
        for alpha in CONVEX_ALPHA:

            def cvx(v: Any, k: Any, c: Any, now: float, a: float = alpha) -> Any:
                return convex(v, k, c, a)

            score("convex", {"alpha": alpha}, cvx, pool)
    rows.sort(key=lambda r: -r["ndcg_at_10"])
    return rows


def print_table(rows: list[dict[str, Any]], top: int) -> None:
    head = f"{'fusion':<8} {'rrf_k':>6} {'w_vec':>6} {'alpha':>6} {'pool':>5}"
    print(f"{head} {'nDCG@10':>8} {'R@100':>7} {'half A':>7} {'half B':>7}", file=sys.stderr)
    for r in rows[:top]:
        print(
            f"{r['fusion']:<8} {r.get('rrf_k', ''):>6} {r.get('vector_weight', ''):>6}"
            f" {r.get('alpha', ''):>6} {r['pool']:>5} {r['ndcg_at_10']:>8.4f}"
            f" {r['recall_at_100']:>7.4f} {r['ndcg_half_a']:>7.4f} {r['ndcg_half_b']:>7.4f}",
            file=sys.stderr,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    parser.add_argument("--model", default=None, help="embed.model (default: settings)")
    parser.add_argument("--mode", action="append", default=None, help="repeatable")
    parser.add_argument("--limit-queries", type=int, default=None)
    parser.add_argument("--sweep", action="store_true", help="grid-search fusion parameters")
    parser.add_argument("--top", type=int, default=25, help="rows of the sweep table to print")
    args = parser.parse_args(argv)

    dataset = load_dataset(args.dataset)
    settings = bench_settings(load_settings({"embed.model": args.model}), dataset.name)

    def progress(done: int, total: int | None) -> None:
        print(f"\rembedded {done}/{total}", end="", file=sys.stderr, flush=True)

    with Memory(settings) as memory:
        if args.sweep:
            ingest(memory, dataset, progress)
            rows = sweep(memory, dataset, query_ids(dataset, args.limit_queries))
            print_table(rows, args.top)
            print(
                json.dumps(
                    {"dataset": dataset.name, "model": memory.embedder.model_id, "sweep": rows}
                )
            )
            return 0
        report = run_benchmark(
            memory, dataset, args.mode, limit_queries=args.limit_queries, progress=progress
        )
    print(file=sys.stderr)
    modes = report["modes"]
    if {"keyword", "vector", "hybrid"} <= set(modes):
        best = max(modes["keyword"]["ndcg_at_10"], modes["vector"]["ndcg_at_10"])
        report["baseline"] = {
            "name": "best single mode (keyword = BM25, vector = dense)",
            "ndcg_at_10": best,
            "hybrid_margin": round(modes["hybrid"]["ndcg_at_10"] - best, 4),
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
