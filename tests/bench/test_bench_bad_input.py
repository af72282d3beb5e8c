"""Benchmark inputs a careless user gives: one clear error, never a traceback or a silent run."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.bench.beir import load_dataset
from magray.embed.bench import bench_corpus
from magray.errors import NotFoundError, UsageError
from tests.bench.test_retrieval import write_dataset
from tests.cli.test_errors_cli import fails, run


def test_a_dataset_that_is_binary_or_a_file_is_a_usage_error(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    (root / "corpus.jsonl").write_bytes(b"\xff\xfe\x93 binary")
    with pytest.raises(UsageError, match=r"corpus\.jsonl is not UTF-8 text"):
        load_dataset(root)
    with pytest.raises(UsageError, match="is a file; give the BEIR dataset's folder"):
        load_dataset(root / "queries.jsonl")


def test_an_infinite_qrels_score_is_named(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tinf\n")
    with pytest.raises(UsageError, match=r"test\.tsv:2: the score must be a number"):
        load_dataset(root)


def test_an_embed_corpus_given_on_purpose_must_be_one(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no corpus file"):
        bench_corpus(tmp_path / "missing.jsonl", 4)
    with pytest.raises(UsageError, match="is a folder"):
        bench_corpus(tmp_path, 4)
    text = tmp_path / "passwd"
    text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(UsageError, match="line 1 is not a JSON object"):
        bench_corpus(text, 4)
    binary = tmp_path / "corpus.jsonl"
    binary.write_bytes(b"\x9a\xff\x00\x01")
    with pytest.raises(UsageError, match="is not UTF-8 text"):
        bench_corpus(binary, 4)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="holds no documents"):
        bench_corpus(empty, 4)
    good = tmp_path / "good.jsonl"
    good.write_text('{"_id": "1", "title": "T", "text": "body"}\n')
    assert bench_corpus(good, 4) == ["T body"]
    with pytest.raises(UsageError, match="at least 1"):
        bench_corpus(None, 0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["bench", "embed", "--limit", "0"], "--limit must be at least 1"),
        (["bench", "embed", "--repeat", "0"], "--repeat must be at least 1"),
        (["bench", "llm", "--runs", "0"], "--runs must be at least 1"),
        (["bench", "llm", "--max-tokens", "-1"], "--max-tokens must be at least 1"),
        (["bench", "memory", "--n", "0"], "--n must be at least 100"),
        (["bench", "memory", "--n", "-1"], "--n must be at least 100"),
        (["bench", "embed", "--threads", "2,100000"], "--threads takes counts from 0"),
    ],
)
def test_bench_counts_below_one_are_refused(args: list[str], needle: str) -> None:
    fails(run(args), 2, needle)


def test_bench_embed_with_a_folder_as_corpus_is_one_line(tmp_path: Path) -> None:
    fails(run(["bench", "embed", "--corpus", str(tmp_path)]), 2, "is a folder")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["bench", "agent", "--only", ""], "--only is empty"),
        (["bench", "agent", "--only", "plan", "--only", " "], "--only is empty"),
        (["bench", "agent", "--provider", ""], "--provider is empty"),
        (["bench", "ask", "--provider", "local", "--provider", " "], "--provider is empty"),
    ],
)
def test_empty_filters_and_providers_are_refused_not_run_on_everything(
    args: list[str], needle: str
) -> None:
    fails(run(args), 2, needle)
