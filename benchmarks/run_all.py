"""Run every benchmark MAGRAY ships and print one JSON object (``make bench``).

    .venv/bin/python benchmarks/run_all.py            # memory at 10K, retrieval, embedding
    .venv/bin/python benchmarks/run_all.py --n 100000 # the memory benchmark at 100K

Each entry is the JSON its own command prints; a benchmark that fails is reported with its
error instead of stopping the others.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def run(args: list[str]) -> object:
    out = subprocess.run(
        [sys.executable, "-m", "magray", *args, "--json"], capture_output=True, text=True
    )
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {out.returncode}"}
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="records for bench memory")
    opts = parser.parse_args()
    report = {
        "memory": run(["bench", "memory", "--n", str(opts.n)]),
        "embed": run(["bench", "embed", "--limit", "256"]),
    }
    if DATA.is_dir():
        report["retrieval"] = run(["bench", "retrieval", "--dataset", str(DATA)])
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
