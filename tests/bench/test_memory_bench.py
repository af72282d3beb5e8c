"""`magray bench memory`: every figure the contract names, from one small real run."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from magray.bench.memory import EFS
from magray.cli.main import app

KEYS = {
    "n",
    "dim",
    "recall_at_10",
    "vector_p50_ms",
    "vector_p99_ms",
    "recall_p50_ms",
    "hybrid_p50_ms",
    "hybrid_p99_ms",
    "filtered_p50_ms",
    "exact_p50_ms",
    "hnswlib_p50_ms",
    "hnswlib_recall_at_10",
    "insert_per_s",
    "bytes_per_vector_disk",
    "bytes_per_vector_ram",
    "open_s",
}


def test_bench_memory_json_contract() -> None:
    result = CliRunner().invoke(
        app, ["bench", "memory", "--n", "600", "--dim", "32", "--queries", "20", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= KEYS, KEYS - set(report)
    assert report["n"] == 600 and report["dim"] == 32
    # Below the brute-force limit every search is exact.
    assert report["recall_at_10"] == 1.0
    assert report["filtered_recall_at_10"] == 1.0
    assert 0.0 < report["hnswlib_recall_at_10"] <= 1.0
    # MAGRAY's vector stage at the expansion that reaches hnswlib's recall
    assert report["vector_equal_recall_at_10"] >= report["hnswlib_recall_at_10"]
    assert report["vector_equal_recall_ef"] in EFS
    assert report["hnswlib_interleaved_p50_ms"] > 0
    assert report["bytes_per_vector_disk"] > 32 * 4


def test_bench_memory_rejects_bad_sizes() -> None:
    result = CliRunner().invoke(app, ["bench", "memory", "--n", "5"])
    assert result.exit_code == 2


def test_bench_memory_compares_backends_side_by_side(postgres_dsn: str) -> None:
    result = CliRunner().invoke(
        app,
        ["bench", "memory", "--n", "300", "--dim", "16", "--queries", "10", "--json",
         "--backend", "sqlite", "--backend", "postgres", "--dsn", postgres_dsn],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"sqlite", "postgres"}
    for name in ("sqlite", "postgres"):
        assert set(report[name]) >= KEYS, (name, KEYS - set(report[name]))
        assert report[name]["n"] == 300
        assert report[name]["recall_at_10"] == 1.0
        assert report[name]["filtered_recall_at_10"] == 1.0
    # The throw-away schema is gone afterwards.
    import psycopg

    with psycopg.connect(postgres_dsn) as conn:
        left = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench\\_%'"
        ).fetchall()
    assert left == []


def test_bench_memory_rejects_an_unknown_backend() -> None:
    result = CliRunner().invoke(app, ["bench", "memory", "--n", "300", "--backend", "mysql"])
    assert result.exit_code == 2
    assert "--backend must be sqlite or postgres" in result.output
