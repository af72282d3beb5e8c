"""The ONNX runtime path: order, batching, odd inputs, threads, CPU fallback."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from magray.embed import session as session_mod
from magray.embed.onnx import OnnxEmbedder
from magray.embed.registry import model_spec
from magray.embed.session import CPU, CUDA, OnnxSession, choose_providers
from magray.errors import ModelError
from tests.embed import tiny

ODD = ["", "\x00\x01\x02", "cat " * 500, "Привет 世界 🚀", "the cat", "dog"]


@pytest.fixture
def tiny_folder(tmp_path: Path) -> Path:
    return tiny.bert_like(tmp_path / "tiny")


def _spec() -> Any:
    return replace(model_spec("default"), name="tiny", dim=tiny.TINY.hidden_size, max_length=60)


def test_order_and_batching_do_not_change_vectors(tiny_folder: Path) -> None:
    one_by_one = OnnxEmbedder(_spec(), tiny_folder, device="cpu", batch_size=1)
    batched = OnnxEmbedder(_spec(), tiny_folder, device="cpu", batch_size=4)
    texts = ["a", "the cat sat on a mat", "dog", "red blue cat dog ran fast", "", "mat"]
    a = one_by_one.embed_documents(texts)
    b = batched.embed_documents(texts)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(batched.embed_documents(texts[::-1]), b[::-1], atol=1e-5)


def test_odd_texts_embed(tiny_folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    emb = OnnxEmbedder(_spec(), tiny_folder, device="cpu")
    with caplog.at_level(logging.WARNING, logger="magray"):
        vectors = emb.embed_documents(ODD)
    assert vectors.shape == (len(ODD), 16) and vectors.dtype == np.float32
    assert np.isfinite(vectors).all()
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert emb.embed_documents([]).shape == (0, 16)


def test_choose_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "available_providers", lambda: [CPU])
    assert choose_providers("auto") == [CPU]
    assert choose_providers("cpu") == [CPU]
    assert choose_providers("cuda") == [CUDA, CPU]
    monkeypatch.setattr(session_mod, "available_providers", lambda: [CUDA, CPU])
    assert choose_providers("auto") == [CUDA, CPU]
    assert choose_providers("cpu") == [CPU]


def test_threads_reach_the_session(tiny_folder: Path) -> None:
    seen: list[int] = []

    def factory(path: str, options: Any, providers: list[str]) -> Any:
        seen.append(options.intra_op_num_threads)
        return session_mod._ort_session(path, options, providers)

    OnnxSession(tiny_folder / "model.onnx", device="cpu", threads=1, factory=factory)
    OnnxSession(tiny_folder / "model.onnx", device="cpu", threads=0, factory=factory)
    assert seen == [1, 0]


class _FailingSession:
    """Looks like a CUDA session, fails every run."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def get_providers(self) -> list[str]:
        return [CUDA, CPU]

    def get_inputs(self) -> Any:
        return self._real.get_inputs()

    def get_outputs(self) -> Any:
        return self._real.get_outputs()

    def run(self, *args: Any) -> Any:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_provider_failing_at_run_time_falls_back_to_cpu_once(
    tiny_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def factory(path: str, options: Any, providers: list[str]) -> Any:
        real = session_mod._ort_session(path, options, [CPU])
        return _FailingSession(real) if providers[0] == CUDA else real

    emb = OnnxEmbedder(_spec(), tiny_folder, device="cuda", session_factory=factory)
    assert emb.provider == CUDA
    reference = OnnxEmbedder(_spec(), tiny_folder, device="cpu")
    with caplog.at_level(logging.WARNING, logger="magray"):
        got = emb.embed_documents(["the cat", "dog ran"])
        emb.embed_documents(["red blue"])
    np.testing.assert_allclose(got, reference.embed_documents(["the cat", "dog ran"]), atol=1e-6)
    assert emb.provider == CPU
    (warning,) = _warnings(caplog)
    assert "failed at run time" in warning


def test_provider_failing_to_load_falls_back_to_cpu_once(
    tiny_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def factory(path: str, options: Any, providers: list[str]) -> Any:
        if providers[0] == CUDA:
            raise RuntimeError("libcublasLt.so.12: cannot open shared object file")
        return session_mod._ort_session(path, options, providers)

    with caplog.at_level(logging.WARNING, logger="magray"):
        emb = OnnxEmbedder(_spec(), tiny_folder, device="cuda", session_factory=factory)
        emb.embed_documents(["the cat"])
    assert emb.provider == CPU
    (warning,) = _warnings(caplog)
    assert "failed to load" in warning


def test_cuda_missing_from_this_build_warns_once(
    tiny_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Plain onnxruntime ignores CUDA it does not have; MAGRAY says so, once."""
    with caplog.at_level(logging.WARNING, logger="magray"):
        session = OnnxSession(tiny_folder / "model.onnx", device="cuda")
    if session.provider == CUDA:
        pytest.skip("this machine has onnxruntime-gpu and a GPU")
    assert session.provider == CPU
    assert len(_warnings(caplog)) == 1


def test_cpu_failure_is_a_model_error(tiny_folder: Path) -> None:
    def factory(path: str, options: Any, providers: list[str]) -> Any:
        raise RuntimeError("bad graph")

    with pytest.raises(ModelError, match="cannot be loaded"):
        OnnxSession(tiny_folder / "model.onnx", device="cpu", factory=factory)


def test_unfeedable_inputs_are_named(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["past_key_values"], ["last_hidden_state"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("past_key_values", TensorProto.FLOAT, [1, 2, 16])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, 2, 16])],
    )
    folder = tmp_path / "odd"
    folder.mkdir()
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
        str(folder / "model.onnx"),
    )
    tiny.write_tokenizer(folder, "bert")
    emb = OnnxEmbedder(_spec(), folder, device="cpu")
    with pytest.raises(ModelError, match="past_key_values"):
        emb.embed_documents(["cat"])


def test_idle_onnx_threads_sleep_instead_of_spinning() -> None:
    options = session_mod.session_options(2)
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
