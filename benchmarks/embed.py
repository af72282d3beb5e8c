"""Embedding speed of MAGRAY's path vs raw ONNX Runtime, and int8 vs fp32; prints JSON.

    .venv/bin/python benchmarks/embed.py                       # threads 1,2; 512 SciFact texts
    .venv/bin/python benchmarks/embed.py --threads 1 --limit 128

Baselines in the same run: a raw ``onnxruntime.InferenceSession`` fed the very same
pre-tokenized batches (target: MAGRAY ≥ 0.95× raw), and the fp32 model (target: int8
≥ 1.4× fp32). Both models are installed into the models dir first if missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from magray.config import load_settings
from magray.embed import install_model
from magray.embed.bench import bench_corpus, bench_embed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--limit", type=int, default=512, help="number of texts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    parser.add_argument("--corpus", type=Path, default=None, help="BEIR corpus.jsonl")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    settings = load_settings()
    texts = bench_corpus(args.corpus, args.limit)
    report: dict[str, object] = {"texts": len(texts), "models": {}}
    models: dict[str, dict[str, object]] = {}
    for name in ("default", "default-int8"):
        install_model(name, settings.paths.models_dir)
        models[name] = bench_embed(settings, name, threads, texts=texts, repeat=args.repeat)
    report["models"] = models
    speedup = []
    for fp32, int8 in zip(
        models["default"]["rows"],  # type: ignore[call-overload]
        models["default-int8"]["rows"],  # type: ignore[call-overload]
        strict=True,
    ):
        speedup.append(
            {
                "threads": fp32["threads"],
                "int8_over_fp32": round(int8["magray_per_s"] / fp32["magray_per_s"], 3),
            }
        )
    report["int8_speedup"] = speedup
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
