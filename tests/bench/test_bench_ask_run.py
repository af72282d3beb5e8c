"""`magray bench ask` end to end: a tiny copy of the docs, the real embedder and Gemma 270M.

The benchmark's corpus leaves out docs/benchmarks.md, the page that reports it (it quotes the
questions and the answers), unless `--with-benchmarks-page` asks for it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from magray.cli.main import app
from tests.conftest import TEST_MODELS_DIR

QUESTION = "What are the three layers of MAGRAY's memory?"


def bench(home: Path, docs: Path, *extra: str) -> dict[str, object]:
    env = {"MAGRAY_HOME": str(home), "MAGRAY_MODELS_DIR": str(TEST_MODELS_DIR)}
    args = ["bench", "ask", "--provider", "local-tiny", "--docs", str(docs), "--limit", "1"]
    result = CliRunner().invoke(app, [*args, "--no-held-out", *extra, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_bench_ask_answers_from_the_docs_without_its_own_report(
    tmp_path: Path, local_gguf: Path, default_model_dir: Path
) -> None:
    docs = tmp_path / "checkout"
    (docs / "docs").mkdir(parents=True)
    (docs / "README.md").write_text(
        "# MAGRAY\n\nMAGRAY's memory has three layers: Interact, Insights and Assets.\n",
        encoding="utf-8",
    )
    (docs / "docs" / "memory.md").write_text(
        "# Memory\n\nRecords expire from Interact after 24 hours unless promoted.\n",
        encoding="utf-8",
    )
    (docs / "docs" / "benchmarks.md").write_text(
        f"# Benchmarks\n\n{QUESTION} was answered with Interact, Insights and Assets.\n",
        encoding="utf-8",
    )
    without = bench(tmp_path / "a", docs)
    assert without["benchmarks_page"] is False and without["chunks"] == 2
    row = without["providers"]["local-tiny"]["rows"][0]  # type: ignore[index]
    assert row["question"] == QUESTION and row["answer"].strip()
    with_page = bench(tmp_path / "b", docs, "--with-benchmarks-page")
    assert with_page["benchmarks_page"] is True and with_page["chunks"] == 3
