"""Build a BERT encoder as an ONNX graph straight from safetensors weights (no torch).

The graph follows Hugging Face's ``BertModel``: word + position + token-type embeddings,
LayerNorm, N encoder layers (multi-head self-attention with the attention mask as an
additive bias, GELU (erf) feed-forward, post-LayerNorm) and returns ``last_hidden_state``.
Patterns are kept simple for ONNX Runtime's optimiser: ``LayerNormalization`` ops, one fused
QKV ``MatMul`` per layer, the erf-GELU form it fuses into ``Gelu``/``BiasGelu``, and the
attention scale folded into the query weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import ModelError

OPSET = 17
MASK_BIAS = -1.0e9

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class BertConfig:
    """The shape of a BERT encoder (the fields of Hugging Face's ``config.json``)."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float = 1e-12

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("hidden_act", "gelu") != "gelu":
            raise ModelError(f"{path}: only BERT models with erf GELU can be built.")
        return cls(
            hidden_size=int(data["hidden_size"]),
            num_layers=int(data["num_hidden_layers"]),
            num_heads=int(data["num_attention_heads"]),
            intermediate_size=int(data["intermediate_size"]),
            layer_norm_eps=float(data.get("layer_norm_eps", 1e-12)),
        )


class _Graph:
    """Collects nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, value: Array) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        self._n += 1
        out = f"{op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def _weights(raw: Mapping[str, Array]) -> dict[str, Array]:
    """Strip a ``bert.`` prefix and cast floats to float32."""
    out: dict[str, Array] = {}
    for key, value in raw.items():
        name = key[5:] if key.startswith("bert.") else key
        out[name] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return out


def build_bert(
    raw_weights: Mapping[str, Array],
    config: BertConfig,
    *,
    token_type_ids: bool = True,
    classifier: bool = False,
) -> Any:
    """The ONNX ``ModelProto`` of a BERT encoder.

    Args:
        raw_weights: Hugging Face tensor names (``embeddings.word_embeddings.weight``, ...).
        config: sizes of the encoder.
        token_type_ids: whether the graph takes a ``token_type_ids`` input (XLM-R-like
            models have none; their single token-type row is added to every token).
        classifier: add a cross-encoder head (``classifier.weight``/``bias`` on the first
            token) and output ``logits`` of shape ``(batch, labels)`` instead.
    """
    from onnx import TensorProto, helper

    w = _weights(raw_weights)
    h, heads = config.hidden_size, config.num_heads
    if h % heads:
        raise ModelError("hidden size must be a multiple of the number of heads.")
    head_dim = h // heads
    eps = config.layer_norm_eps
    g = _Graph()

    def get(name: str) -> Array:
        try:
            return w[name]
        except KeyError:
            raise ModelError(
                f"the weights have no tensor {name!r}; is this a BERT model?"
            ) from None

    def layer_norm(x: str, prefix: str) -> str:
        scale = g.const(f"{prefix}.weight", get(f"{prefix}.weight"))
        bias = g.const(f"{prefix}.bias", get(f"{prefix}.bias"))
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)

    def dense(x: str, prefix: str, weight: Array | None = None, bias: Array | None = None) -> str:
        wt = (get(f"{prefix}.weight") if weight is None else weight).T
        b = get(f"{prefix}.bias") if bias is None else bias
        y = g.op("MatMul", [x, g.const(f"{prefix}.weight_t", wt)])
        return g.op("Add", [y, g.const(f"{prefix}.bias", b)])

    # Embeddings.
    words = g.op(
        "Gather",
        [g.const("word_embeddings", get("embeddings.word_embeddings.weight")), "input_ids"],
    )
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)
    pos_emb = g.op(
        "Slice",
        [
            g.const("position_embeddings", get("embeddings.position_embeddings.weight")),
            g.const("zero_1d", np.array([0], np.int64)),
            seq_len,
            g.const("zero_1d_axis", np.array([0], np.int64)),
        ],
    )
    types = get("embeddings.token_type_embeddings.weight")
    if token_type_ids:
        type_emb = g.op("Gather", [g.const("token_type_embeddings", types), "token_type_ids"])
    else:
        type_emb = g.const("token_type_row", types[0])
    x = layer_norm(g.op("Add", [g.op("Add", [words, pos_emb]), type_emb]), "embeddings.LayerNorm")

    # Additive attention bias, (batch, 1, 1, seq): 0 for tokens, MASK_BIAS for padding.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = g.op("Unsqueeze", [mask, g.const("axes_1_2", np.array([1, 2], np.int64))])
    inverted = g.op("Sub", [g.const("one_f", np.array(1.0, np.float32)), mask])
    bias = g.op("Mul", [inverted, g.const("mask_bias", np.array(MASK_BIAS, np.float32))])

    heads_shape = g.const("heads_shape", np.array([0, 0, heads, head_dim], np.int64))
    hidden_shape = g.const("hidden_shape", np.array([0, 0, h], np.int64))
    split = g.const("qkv_split", np.array([h, h, h], np.int64))
    scale = 1.0 / math.sqrt(head_dim)
    for i in range(config.num_layers):
        p = f"encoder.layer.{i}"
        a = f"{p}.attention.self"
        qkv_w = np.concatenate(
            [get(f"{a}.query.weight") * scale, get(f"{a}.key.weight"), get(f"{a}.value.weight")]
        )
        qkv_b = np.concatenate(
            [get(f"{a}.query.bias") * scale, get(f"{a}.key.bias"), get(f"{a}.value.bias")]
        )
        qkv = dense(x, f"{a}.qkv", qkv_w, qkv_b)
        g.nodes.append(_split(qkv, split, i))
        q, k, v = (f"{name}_{i}" for name in ("q", "k", "v"))
        q = g.op("Transpose", [g.op("Reshape", [q, heads_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, heads_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, heads_shape])], perm=[0, 2, 1, 3])
        scores = g.op("Add", [g.op("MatMul", [q, k]), bias])
        probs = g.op("Softmax", [scores], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        context = g.op("Reshape", [context, hidden_shape])
        attn = dense(context, f"{p}.attention.output.dense")
        x = layer_norm(g.op("Add", [attn, x]), f"{p}.attention.output.LayerNorm")
        inter = dense(x, f"{p}.intermediate.dense")
        inter = _gelu(g, inter)
        out = dense(inter, f"{p}.output.dense")
        x = layer_norm(g.op("Add", [out, x]), f"{p}.output.LayerNorm")

    batch, seq = "batch", "sequence"
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, [batch, seq])
        for name in ("input_ids", "attention_mask", "token_type_ids")
        if token_type_ids or name != "token_type_ids"
    ]
    if classifier:
        first = g.op("Gather", [x, g.const("zero_idx", np.array(0, np.int64))], axis=1)
        cls_w = get("classifier.weight")
        logits = dense(first, "classifier", cls_w, get("classifier.bias"))
        g.nodes.append(helper.make_node("Identity", [logits], ["logits"], name="logits"))
        outputs = [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, cls_w.shape[0]])
        ]
    else:
        g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))
        outputs = [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [batch, seq, h])
        ]
    graph = helper.make_graph(g.nodes, "bert", inputs, outputs, g.inits)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="magray"
    )
    model.ir_version = 8
    return model


def _split(qkv: str, sizes: str, layer: int) -> Any:
    from onnx import helper

    outs = [f"q_{layer}", f"k_{layer}", f"v_{layer}"]
    return helper.make_node("Split", [qkv, sizes], outs, name=f"split_{layer}", axis=-1)


def _gelu(g: _Graph, x: str) -> str:
    """``x * 0.5 * (1 + erf(x / sqrt(2)))``: the form ONNX Runtime fuses into Gelu."""
    half = g.const(f"gelu_half_{x}", np.array(0.5, np.float32))
    one = g.const(f"gelu_one_{x}", np.array(1.0, np.float32))
    root2 = g.const(f"gelu_sqrt2_{x}", np.array(math.sqrt(2.0), np.float32))
    erf = g.op("Erf", [g.op("Div", [x, root2])])
    return g.op("Mul", [g.op("Mul", [x, g.op("Add", [erf, one])]), half])


def build_from_folder(folder: Path, target: Path) -> Path:
    """Build ``target`` (model.onnx) from ``folder``'s ``model.safetensors`` + ``config.json``."""
    import onnx
    from safetensors.numpy import load_file

    weights = load_file(str(folder / "model.safetensors"))
    model = build_bert(weights, BertConfig.from_json(folder / "config.json"))
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target
