"""Retrieval benchmark: metrics, the BEIR loader, and `magray bench retrieval` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import magray.embed
from magray.bench.beir import Dataset, load_dataset
from magray.bench.metrics import dcg, ndcg_at_k, recall_at_k
from magray.bench.retrieval import bench_settings, run_benchmark
from magray.cli.main import app
from magray.config import load_settings
from magray.embed import install_model
from magray.errors import NotFoundError, UsageError
from magray.memory.service import Memory
from tests.conftest import SHARED_DATA
from tests.fakes import HashEmbedder

runner = CliRunner()


# -- metrics -------------------------------------------------------------------------------
def test_ndcg_binary_by_hand() -> None:
    # relevant docs a, b; ranked: x a y b → DCG = 1/log2(3) + 1/log2(5); IDCG = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["x", "a", "y", "b"], {"a": 1, "b": 1}) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b", "x"], {"a": 1, "b": 1}) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], {"a": 1}) == 0.0


def test_ndcg_graded_linear_and_exponential_gain() -> None:
    judged = {"a": 2, "b": 1, "z": 0}
    ranked = ["b", "a"]
    linear = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    exponential = (1 + 3 / math.log2(3)) / (3 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, judged) == pytest.approx(linear)
    assert ndcg_at_k(ranked, judged, exponential=True) == pytest.approx(exponential)
    assert dcg([1, 0, 1]) == dcg([1, 0, 1], exponential=True)  # binary: both gains agree


def test_ndcg_cuts_at_k_and_counts_duplicates_once() -> None:
    assert ndcg_at_k(["x", "a"], {"a": 1}, k=1) == 0.0
    assert ndcg_at_k(["x", "x", "a"], {"a": 1}, k=2) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(["a"], {"a": 0}) == 0.0  # no positive judgment


def test_recall_at_k() -> None:
    judged = {"a": 1, "b": 2, "c": 1, "n": 0}
    assert recall_at_k(["a", "n", "b", "x"], judged, k=100) == pytest.approx(2 / 3)
    assert recall_at_k(["a", "n", "b"], judged, k=1) == pytest.approx(1 / 3)
    assert recall_at_k(["a", "a", "b"], judged, k=2) == pytest.approx(2 / 3)
    assert recall_at_k(["a"], {}, k=10) == 0.0


# -- loader --------------------------------------------------------------------------------
CORPUS = [
    ("d1", "Port numbers", "The staging database listens on port 5433."),
    ("d2", "Deploy schedule", "Deploys run every Tuesday after the standup meeting."),
    ("d3", "Backups", "Production database backups are taken every night at two."),
    ("d4", "Cats", "The cat sleeps on the sofa all day long."),
    ("d5", "Linting", "Run ruff and mypy before every commit you push."),
    ("d6", "", "Coffee beans are roasted in small batches on Fridays."),
]
QUERIES = [
    ("q1", "which port does the staging database use"),
    ("q2", "when do deploys happen"),
    ("q3", "nightly database backups"),
    ("q4", "an unjudged query about cats"),
]
QRELS = [("q1", "d1", 1), ("q2", "d2", 2), ("q3", "d3", 1), ("q3", "d1", 0)]


def write_dataset(root: Path, corpus: list[tuple[str, str, str]] = CORPUS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in corpus)
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": i, "text": x}) + "\n" for i, x in QUERIES)
    )
    (root / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in QRELS[:2]]
    (root / "qrels" / "train.tsv").write_text("\n".join(lines) + "\n")
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, d, s in QRELS[2:]]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_load_dataset_merges_every_qrels_file(tmp_path: Path) -> None:
    data = load_dataset(write_dataset(tmp_path / "tiny"))
    assert data.name == "tiny"
    assert len(data.corpus) == 6
    assert data.corpus["d6"].indexed_text.startswith("Coffee")  # empty title, no leading space
    assert (
        data.corpus["d1"].indexed_text == "Port numbers The staging database listens on port 5433."
    )
    assert data.qrels["q2"] == {"d2": 2}
    assert data.qrels["q3"] == {"d3": 1, "d1": 0}
    assert data.judged_queries == ["q1", "q2", "q3"]


def test_missing_parts_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    root = write_dataset(tmp_path / "tiny")
    (root / "queries.jsonl").unlink()
    for f in (root / "qrels").iterdir():
        f.unlink()
    with pytest.raises(NotFoundError, match=r"missing queries\.jsonl, qrels/\*\.tsv"):
        load_dataset(root)


def test_malformed_lines_give_file_and_line(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "tiny")
    corpus = root / "corpus.jsonl"
    corpus.write_text(corpus.read_text() + "{not json\n")
    with pytest.raises(UsageError, match=r"corpus\.jsonl:7: not valid JSON"):
        load_dataset(root)
    root = write_dataset(tmp_path / "tiny2")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": 5}\n')
    with pytest.raises(UsageError, match=r"queries\.jsonl:1: \"text\" must be a string"):
        load_dataset(root)
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(UsageError, match=r"test\.tsv:2: expected"):
        load_dataset(root)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(UsageError, match=r"test\.tsv:2: the score must be a number"):
        load_dataset(root)


# -- `magray bench retrieval` end to end (hashing embedder) --------------------------------
@pytest.fixture
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> HashEmbedder:
    embedder = HashEmbedder(dim=256)
    monkeypatch.setattr(magray.embed, "load_embedder", lambda *a, **k: embedder, raising=False)
    monkeypatch.setattr(magray.embed, "load_reranker", lambda *a, **k: None, raising=False)
    return embedder


def run_json(*args: str) -> dict[str, object]:
    result = runner.invoke(app, ["bench", "retrieval", *args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def test_bench_retrieval_json_and_reuse(
    tmp_path: Path, magray_home: Path, hash_embedder: HashEmbedder
) -> None:
    root = write_dataset(tmp_path / "tiny")
    first = run_json("--dataset", str(root))
    assert first["dataset"] == "tiny"
    assert first["queries"] == 3
    modes = first["modes"]
    assert isinstance(modes, dict)
    assert set(modes) == {"keyword", "vector", "hybrid"}  # no reranker installed
    for row in modes.values():
        assert set(row) >= {"ndcg_at_10", "recall_at_100"}
        assert 0.0 < row["ndcg_at_10"] <= 1.0
        assert row["recall_at_100"] == 1.0  # six documents, k = 100
    assert modes["keyword"]["ndcg_at_10"] == 1.0
    assert first["reused_vectors"] is False
    assert first["embedded"] == 6
    assert (magray_home / "data" / "bench" / "tiny" / "default" / "memory.db").is_file()

    second = run_json("--dataset", str(root), "--mode", "hybrid", "--mode", "keyword")
    assert second["reused_vectors"] is True
    assert second["embedded"] == 0
    assert list(second["modes"]) == ["hybrid", "keyword"]  # type: ignore[call-overload]
    assert second["modes"]["hybrid"] == {  # type: ignore[index]
        **modes["hybrid"],
        "ms_per_query": second["modes"]["hybrid"]["ms_per_query"],  # type: ignore[index]
    }

    # A changed corpus: one document edited, one removed → only the edit is embedded.
    edited = [*CORPUS[:3], ("d4", "Cats", "The cat sleeps on the warm sofa."), CORPUS[4]]
    write_dataset(root, edited)
    third = run_json("--dataset", str(root), "--mode", "keyword", "--limit-queries", "2")
    assert third["embedded"] == 1
    assert third["documents"] == 5
    assert third["queries"] == 2


def test_bench_retrieval_errors(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    result = runner.invoke(app, ["bench", "retrieval", "--dataset", str(tmp_path / "none")])
    assert result.exit_code == 3
    assert "does not exist" in result.stderr
    root = write_dataset(tmp_path / "tiny")
    result = runner.invoke(app, ["bench", "retrieval", "--dataset", str(root), "--mode", "fuzzy"])
    assert result.exit_code == 2
    assert "unknown mode 'fuzzy'" in result.stderr


# -- golden quality with the real default model -------------------------------------------
GOLDEN_QUERIES = 100
GOLDEN_DISTRACTORS = 500
# Measured with all-minilm-l6-v2 (fp32), convex fusion α = 0.5: hybrid nDCG@10 0.863
# (keyword 0.817, vector 0.865), Recall@100 1.0; floors are those minus 0.03.
GOLDEN_HYBRID_FLOOR = 0.83
GOLDEN_RECALL_FLOOR = 0.97
# On this small, easy corpus dense retrieval alone is strong; hybrid must stay within this.
GOLDEN_EPSILON = 0.02


def golden_subset(root: Path) -> Dataset:
    """The first judged SciFact train queries, their relevant abstracts and fixed distractors."""
    full = load_dataset(root)
    ids = full.judged_queries[:GOLDEN_QUERIES]
    relevant = {d for q in ids for d, grade in full.qrels[q].items() if grade > 0}
    others = [d for d in full.corpus if d not in relevant][:GOLDEN_DISTRACTORS]
    keep = relevant | set(others)
    return Dataset(
        name="scifact-golden",
        path=root,
        corpus={d: doc for d, doc in full.corpus.items() if d in keep},
        queries={q: full.queries[q] for q in ids},
        qrels={q: full.qrels[q] for q in ids},
    )


@pytest.mark.model
@pytest.mark.slow
def test_golden_hybrid_quality_on_scifact_subset(capsys: pytest.CaptureFixture[str]) -> None:
    root = SHARED_DATA / "scifact"
    assert (root / "corpus.jsonl").is_file(), f"the golden data set {root} is missing"
    settings = load_settings()
    install_model("default", settings.paths.models_dir)  # idempotent; `make test` fills it
    data = golden_subset(root)
    with Memory(bench_settings(settings, data.name)) as memory:
        report = run_benchmark(memory, data, ["keyword", "vector", "hybrid"])
    with capsys.disabled():
        print("\ngolden scifact subset:", json.dumps(report["modes"]))
    modes = report["modes"]
    keyword, vector, hybrid = (modes[m]["ndcg_at_10"] for m in ("keyword", "vector", "hybrid"))
    assert report["queries"] == GOLDEN_QUERIES
    assert hybrid >= GOLDEN_HYBRID_FLOOR
    assert hybrid > max(keyword, vector) - GOLDEN_EPSILON
    assert modes["hybrid"]["recall_at_100"] >= GOLDEN_RECALL_FLOOR
