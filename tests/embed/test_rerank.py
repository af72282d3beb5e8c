"""The cross-encoder reranker on a tiny model built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from magray.config import load_settings
from magray.embed import load_reranker
from magray.embed.base import Reranker
from magray.embed.registry import register_user_model
from tests.embed import tiny
from tests.embed.reference import bert_forward


def test_scores_match_the_reference_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models_dir = tmp_path / "models"
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models_dir))
    folder = tiny.cross_encoder(tmp_path / "ce", seed=5)
    register_user_model(models_dir, "bge-reranker-v2-m3", folder, max_length=60)
    reranker = load_reranker(load_settings())  # "reranker": any installed one
    assert isinstance(reranker, Reranker)
    passages = ["the cat sat on a mat", "dog ran fast", "", "red blue " * 40]
    scores = reranker.score("cat on mat", passages)
    assert scores.shape == (4,) and scores.dtype == np.float32
    weights = tiny.bert_weights(labels=1, seed=5)
    enc = reranker.tokenizer.encode([("cat on mat", p) for p in passages])  # type: ignore[attr-defined]
    for i, e in enumerate(enc):
        ids = np.array([e.ids])
        hidden = bert_forward(
            weights, ids, np.ones_like(ids), np.array([e.type_ids]), num_heads=tiny.TINY.num_heads
        )
        logit = hidden[0, 0] @ weights["classifier.weight"][0] + weights["classifier.bias"][0]
        assert scores[i] == pytest.approx(logit, abs=1e-3)
    assert reranker.score("q", []).shape == (0,)
