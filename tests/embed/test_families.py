"""Each model family's input signature and pooling, on tiny models built here."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from magray.embed.onnx import OnnxEmbedder
from magray.embed.pooling import l2_normalize, pool
from magray.embed.registry import QWEN3_QUERY, model_spec
from tests.embed import tiny

TEXTS = ["the cat sat on a mat", "dog ran", "", "memory vector search query passage red blue"]


def _expected(folder: Path, emb: OnnxEmbedder, texts: list[str], how: str) -> np.ndarray:
    """Pool each text alone (no padding at all) with numpy, from the graph's own states."""
    rows = []
    for text in texts:
        padded = emb.tokenizer.pad(emb.tokenizer.encode([text]))
        hidden = tiny.hidden_states(folder, padded)
        if how == "mean":
            rows.append(hidden[0].mean(axis=0))
        elif how == "cls":
            rows.append(hidden[0, 0])
        else:
            rows.append(hidden[0, -1])
    return l2_normalize(np.stack(rows))


def test_bert_like_mean_pooling(tmp_path: Path) -> None:
    folder = tiny.bert_like(tmp_path / "bert")
    spec = replace(model_spec("default"), name="tiny-bert", dim=tiny.TINY.hidden_size)
    emb = OnnxEmbedder(spec, folder, device="cpu", batch_size=3)
    assert emb.session.input_names == ("input_ids", "attention_mask", "token_type_ids")
    got = emb.embed_documents(TEXTS)
    np.testing.assert_allclose(got, _expected(folder, emb, TEXTS, "mean"), atol=1e-5)


def test_xlmr_like_cls_pooling_without_token_types(tmp_path: Path) -> None:
    folder = tiny.bert_like(tmp_path / "xlmr", token_type_ids=False)
    spec = replace(model_spec("bge-m3"), dim=tiny.TINY.hidden_size)
    emb = OnnxEmbedder(spec, folder, device="cpu", batch_size=4)
    assert "token_type_ids" not in emb.session.input_names
    got = emb.embed_documents(TEXTS)
    np.testing.assert_allclose(got, _expected(folder, emb, TEXTS, "cls"), atol=1e-5)


def test_decoder_like_last_token_left_padding(tmp_path: Path) -> None:
    folder = tiny.decoder_like(tmp_path / "qwen", dim=8)
    spec = replace(model_spec("qwen3-embedding-0.6b"), dim=8)
    assert spec.padding_side == "left" and spec.pooling == "last_token"
    emb = OnnxEmbedder(spec, folder, device="cpu", batch_size=4)
    padded = emb.tokenizer.pad(emb.tokenizer.encode(TEXTS))
    assert (padded["attention_mask"][:, -1] == 1).all()  # left padding: real tokens at the end
    assert (padded["position_ids"][padded["attention_mask"] == 1].min()) == 0
    got = emb.embed_documents(TEXTS)
    np.testing.assert_allclose(got, _expected(folder, emb, TEXTS, "last"), atol=1e-5)
    # The state at the last position is not the state of the first real token.
    hidden = tiny.hidden_states(folder, padded)
    first = np.argmax(padded["attention_mask"] == 1, axis=1)
    wrong = l2_normalize(hidden[np.arange(len(TEXTS)), first])
    assert not np.allclose(got[[0, 3]], wrong[[0, 3]], atol=1e-3)


def test_qwen3_query_instruction_only_on_queries(tmp_path: Path) -> None:
    folder = tiny.decoder_like(tmp_path / "qwen", dim=8)
    spec = replace(model_spec("qwen3-embedding-0.6b"), dim=8)
    emb = OnnxEmbedder(spec, folder, device="cpu")
    assert spec.query_prefix == QWEN3_QUERY
    doc = emb.embed_documents(["red cat"])
    query = emb.embed_queries(["red cat"])
    by_hand = emb.embed_documents([QWEN3_QUERY + "red cat"])
    np.testing.assert_allclose(query, by_hand, atol=1e-6)
    assert not np.allclose(doc, query, atol=1e-3)


def test_pooling_last_token_right_padding() -> None:
    hidden = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    mask = np.array([[1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(pool(hidden, mask, "last_token"), hidden[[0, 1], [1, 2]])
    np.testing.assert_array_equal(pool(hidden, mask, "cls"), hidden[:, 0])


def test_dimension_mismatch_is_a_model_error(tmp_path: Path) -> None:
    from magray.errors import ModelError

    folder = tiny.bert_like(tmp_path / "bert")
    emb = OnnxEmbedder(model_spec("default"), folder, device="cpu")  # says 384-d, gives 16-d
    with pytest.raises(ModelError, match="--dim"):
        emb.embed_documents(["cat"])


def test_truncation_is_logged_once_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.embed import onnx

    monkeypatch.setattr(onnx, "_truncated", 0)
    folder = tiny.bert_like(tmp_path / "bert")
    spec = replace(model_spec("default"), dim=16, max_length=8)
    emb = OnnxEmbedder(spec, folder, device="cpu", batch_size=1)
    with caplog.at_level(logging.WARNING, logger="magray"):
        vectors = emb.embed_documents(["cat " * 50, "dog", "red " * 9])
        emb.embed_documents(["cat " * 50])  # another batch: no second warning
    assert vectors.shape == (3, 16)
    notes = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(notes) == 1
    assert notes[0].getMessage().startswith("texts longer than 8 tokens are embedded truncated")
    assert onnx.truncated_count() == 3
