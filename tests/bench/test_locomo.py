"""`magray bench locomo`: the paper's metric and the JSON contract on a tiny conversation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import magray.embed
from magray.bench.locomo import score_ranking
from magray.bench.locomo_data import load_locomo, parse_session_time, turn_document
from magray.cli.main import app
from tests.fakes import HashEmbedder

runner = CliRunner()

SAMPLE = {
    "sample_id": "conv-tiny",
    "conversation": {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ana", "dia_id": "D1:1", "text": "I started pottery classes."},
            {"speaker": "Ben", "dia_id": "D1:2", "text": "Nice, what did you make?"},
            {
                "speaker": "Ana",
                "dia_id": "D1:3",
                "text": "A bowl for my cat.",
                "img_url": ["http://x"],
                "blip_caption": "a photo of a blue bowl",
            },
        ],
        "session_2_date_time": "7:00 pm on 20 May, 2023",
        "session_2": [
            {"speaker": "Ben", "dia_id": "D2:1", "text": "I ran a marathon in Lisbon."},
            {"speaker": "Ana", "dia_id": "D2:2", "text": "How long did the marathon take?"},
            {"speaker": "Ben", "dia_id": "D2:3", "text": "Four hours and ten minutes."},
        ],
    },
    "qa": [
        {"question": "What did Ana make in pottery?", "evidence": ["D1:3"], "category": 4},
        {"question": "Where did Ben run a marathon?", "evidence": ["D2:1", "D:2"], "category": 1},
        {"question": "Is Ben a chef?", "evidence": [], "category": 5},
    ],
}


def test_documents_and_times_as_the_paper_builds_them(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([SAMPLE]))
    [conv] = load_locomo(tmp_path)
    assert conv.turns[2].text == 'Ana said, "A bowl for my cat." and shared a photo of a blue bowl'
    assert conv.turns[0].text == turn_document("Ana", "I started pottery classes.", None)
    assert conv.turns[0].at == parse_session_time("1:56 pm on 8 May, 2023") == 1683554160.0
    assert conv.turns[1].at == 1683554161.0 and conv.turns[3].session == 2
    assert len(conv.questions) == 3


def test_recall_counts_malformed_evidence_in_the_denominator() -> None:
    recalls, hit1, sr5 = score_ranking(["D2:1", "D1:1"], ["D2:1", "D:2"])
    assert recalls == [0.5, 0.5, 0.5, 0.5] and hit1 == 1.0 and sr5 == 1.0
    recalls, hit1, sr5 = score_ranking(["D1:1", "D1:2", "D2:3"], ["D2:3"])
    assert recalls[0] == 1.0 and hit1 == 0.0 and sr5 == 1.0


@pytest.fixture
def hash_embedder(monkeypatch: pytest.MonkeyPatch) -> HashEmbedder:
    embedder = HashEmbedder(dim=256)
    monkeypatch.setattr(magray.embed, "load_embedder", lambda *a, **k: embedder, raising=False)
    return embedder


def test_bench_locomo_json_contract(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([SAMPLE]))
    result = runner.invoke(app, ["bench", "locomo", "--dataset", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["conversations"], data["questions"], data["records"]) == (1, 2, 6)
    assert data["k"] == 50 and data["model"] == hash_embedder.model_id
    assert list(data["modes"]) == ["keyword", "vector", "hybrid", "context"]
    for row in data["modes"].values():
        assert set(row["overall"]) == {"r@5", "r@10", "r@25", "r@50"}
        assert set(row["categories"]) == {"single-hop", "multi-hop"}
        assert row["categories"]["multi-hop"]["questions"] == 1
        # six turns: every real evidence turn is in the top 5; the malformed one never is
        assert row["categories"]["multi-hop"]["r@5"] == 50.0
        assert row["categories"]["single-hop"]["r@50"] == 100.0
        assert row["overall"]["r@50"] == 75.0
        assert set(row["session"]) == {"hit@1", "r@5"} and row["session"]["r@5"] == 100.0
        assert row["recall_ms_p50"] > 0
    [store] = data["stores"]
    assert store["conversation"] == "conv-tiny" and store["records"] == 6
    assert set(store["recall_ms_p50"]) == set(data["modes"])
    # a conversation's records carry a session and an event time; a plain store does not
    assert store["bytes_per_record"] > 0 and store["plain_bytes_per_record"] > 0
    storage = data["storage"]
    assert storage["bytes_per_record"] == store["bytes_per_record"]
    expected = 100 * (store["bytes_per_record"] / store["plain_bytes_per_record"] - 1)
    assert storage["growth_percent"] == pytest.approx(expected, abs=0.1)
    text = runner.invoke(app, ["bench", "locomo", "--dataset", str(path), "--mode", "keyword"])
    assert text.exit_code == 0 and "overall" in text.stdout and "context" not in text.stdout


def test_bench_locomo_errors(tmp_path: Path, hash_embedder: HashEmbedder) -> None:
    result = runner.invoke(app, ["bench", "locomo", "--dataset", str(tmp_path / "none.json")])
    assert result.exit_code != 0 and "does not exist" in result.stderr
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps([SAMPLE]))
    result = runner.invoke(app, ["bench", "locomo", "--dataset", str(path), "--mode", "fuzzy"])
    assert result.exit_code == 2 and "unknown mode 'fuzzy'" in result.stderr
    path.write_text(json.dumps([{"sample_id": "x"}]))
    result = runner.invoke(app, ["bench", "locomo", "--dataset", str(path)])
    assert result.exit_code == 2 and "has no conversation" in result.stderr
