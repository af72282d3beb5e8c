"""Tiny random-weight models the tests build themselves, one per family, plus tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from magray.embed.build import BertConfig, build_bert

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "dog",
    "ran",
    "fast",
    "memory",
    "vector",
    "search",
    "query",
    "passage",
    "red",
    "blue",
]
TINY = BertConfig(hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32)


def write_tokenizer(folder: Path, style: str) -> Path:
    """A word-level tokenizer.json: ``bert`` ([CLS] x [SEP]), ``xlmr`` (<s> x </s>) or
    ``decoder`` (x <|endoftext|>, no start token)."""
    specials = {
        "bert": ["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
        "xlmr": ["<pad>", "<unk>", "<s>", "</s>"],
        "decoder": ["<|endoftext|>", "<unk>"],
    }[style]
    vocab = {tok: i for i, tok in enumerate([*specials, *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=specials[1]))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if style == "decoder":
        eos = "<|endoftext|>"
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B:1 {eos}:1", special_tokens=[(eos, vocab[eos])]
        )
    else:
        cls, sep = specials[2], specials[3]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B:1 {sep}:1",
            special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tok.save(str(path))
    return path


def bert_weights(
    config: BertConfig = TINY, vocab: int = 40, types: int = 2, labels: int = 0, seed: int = 0
) -> dict[str, Any]:
    """Random weights with Hugging Face BERT tensor names."""
    rng = np.random.default_rng(seed)
    h, i = config.hidden_size, config.intermediate_size

    def r(*shape: int) -> Any:
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(vocab, h),
        "embeddings.position_embeddings.weight": r(64, h),
        "embeddings.token_type_embeddings.weight": r(types, h),
        "embeddings.LayerNorm.weight": 1 + r(h),
        "embeddings.LayerNorm.bias": r(h),
    }
    for n in range(config.num_layers):
        p = f"encoder.layer.{n}"
        for name, (out, inp) in {
            "attention.self.query": (h, h),
            "attention.self.key": (h, h),
            "attention.self.value": (h, h),
            "attention.output.dense": (h, h),
            "intermediate.dense": (i, h),
            "output.dense": (h, i),
        }.items():
            w[f"{p}.{name}.weight"] = r(out, inp)
            w[f"{p}.{name}.bias"] = r(out)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"] = 1 + r(h)
            w[f"{p}.{ln}.bias"] = r(h)
    if labels:
        w["classifier.weight"] = r(labels, h)
        w["classifier.bias"] = r(labels)
    return w


def bert_like(folder: Path, *, token_type_ids: bool = True, seed: int = 0) -> Path:
    """A tiny BERT (``token_type_ids=False``: XLM-R-like, as BGE-M3) encoder folder."""
    weights = bert_weights(types=2 if token_type_ids else 1, seed=seed)
    model = build_bert(weights, TINY, token_type_ids=token_type_ids)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    write_tokenizer(folder, "bert" if token_type_ids else "xlmr")
    return folder


def cross_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny BERT cross-encoder with a one-logit head."""
    model = build_bert(bert_weights(labels=1, seed=seed), TINY, classifier=True)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    write_tokenizer(folder, "bert")
    return folder


def decoder_like(folder: Path, dim: int = 8, seed: int = 0) -> Path:
    """A tiny causal "decoder" (as Qwen3): inputs input_ids, attention_mask, position_ids.

    ``h[t] = tanh(cumsum_{s<=t}(mask[s] * E[ids[s]]) + P[pos[t]])``: each position sees only
    itself and earlier tokens, so only the last real token has read the whole text.
    """
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((40, dim)).astype(np.float32)
    pos = rng.standard_normal((64, dim)).astype(np.float32) * 0.1
    nodes = [
        helper.make_node("Gather", ["E", "input_ids"], ["tok"]),
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis_neg1"], ["mask3"]),
        helper.make_node("Mul", ["tok", "mask3"], ["masked"]),
        helper.make_node("CumSum", ["masked", "axis_1"], ["running"]),
        helper.make_node("Gather", ["P", "position_ids"], ["posemb"]),
        helper.make_node("Add", ["running", "posemb"], ["pre"]),
        helper.make_node("Tanh", ["pre"], ["last_hidden_state"]),
    ]
    inits = [
        numpy_helper.from_array(emb, "E"),
        numpy_helper.from_array(pos, "P"),
        numpy_helper.from_array(np.array([-1], np.int64), "axis_neg1"),
        numpy_helper.from_array(np.array(1, np.int64), "axis_1"),
    ]
    ins = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
        for n in ("input_ids", "attention_mask", "position_ids")
    ]
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["b", "s", dim])
    graph = helper.make_graph(nodes, "decoder", ins, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "model.onnx"))
    write_tokenizer(folder, "decoder")
    return folder


def hidden_states(folder: Path, feed: dict[str, Any]) -> Any:
    """The graph's token states, straight from ONNX Runtime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = {i.name for i in session.get_inputs()}
    return session.run(None, {k: v for k, v in feed.items() if k in names})[0]
