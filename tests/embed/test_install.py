"""Installing, verifying, registering and removing models."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.embed import install_model, load_embedder, load_reranker, model_spec
from magray.embed.install import MANIFEST, is_installed, remove_model, verify
from magray.embed.registry import register_user_model, user_specs
from magray.errors import (
    ModelError,
    ModelNotInstalledError,
    NetworkError,
    NotFoundError,
    UsageError,
)
from tests.embed import tiny


def test_default_install_writes_model_tokenizer_manifest(default_model_dir: Path) -> None:
    manifest = json.loads((default_model_dir / MANIFEST).read_text())
    assert set(manifest["files"]) == {"model.onnx", "tokenizer.json"}
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    tok = json.loads((default_model_dir / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"]["max_length"] == 256


def test_install_is_idempotent_and_fast(default_model_dir: Path) -> None:
    before = (default_model_dir / "model.onnx").stat().st_mtime_ns
    started = time.perf_counter()
    assert install_model("default", default_model_dir.parent) == default_model_dir
    assert time.perf_counter() - started < 5
    assert (default_model_dir / "model.onnx").stat().st_mtime_ns == before


def test_aliases_and_ids() -> None:
    assert model_spec("default").name == "all-minilm-l6-v2"
    assert model_spec("DEFAULT-INT8").name == "all-minilm-l6-v2-int8"
    ids = {model_spec(n).model_id for n in ("default", "default-int8", "bge-m3")}
    assert len(ids) == 3
    assert model_spec("qwen3-embedding-0.6b").padding_side == "left"
    assert model_spec("bge-reranker-v2-m3").kind == "reranker"
    with pytest.raises(NotFoundError, match="magray models list"):
        model_spec("nope")


def _copy_default(default_model_dir: Path, models_dir: Path) -> Path:
    target = models_dir / default_model_dir.name
    shutil.copytree(default_model_dir, target)
    return target


def test_corrupt_file_is_a_model_error_naming_the_fix(
    default_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = tmp_path / "models"
    folder = _copy_default(default_model_dir, models_dir)
    with (folder / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models_dir))
    with pytest.raises(ModelError, match="magray models install default") as info:
        load_embedder(load_settings(), cached=False)
    assert "checksum" in str(info.value)


def test_default_model_is_built_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path / "empty"))
    with caplog.at_level("WARNING", logger="magray"):
        embedder = load_embedder(load_settings(), cached=False)
    assert embedder.embed_queries(["hello"]).shape == (1, 384)
    assert any("building the embedding model" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "empty" / "all-minilm-l6-v2" / "manifest.json").is_file()


def test_model_that_cannot_be_built_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ModelNotInstalledError, match="`magray models install bge-m3`"):
        load_embedder(load_settings(), "bge-m3")


def test_verified_files_are_not_hashed_again(default_model_dir: Path, tmp_path: Path) -> None:
    from magray.embed import install

    models_dir = tmp_path / "models"
    folder = _copy_default(default_model_dir, models_dir)
    spec = model_spec("default")
    verify(spec, models_dir, fresh=True)
    assert (folder / install.VERIFIED_STAMP).is_file()
    install._verified.clear()
    calls: list[Path] = []
    original = install.sha256_file
    install.sha256_file = lambda p: calls.append(p) or original(p)  # type: ignore[assignment,func-returns-value]
    try:
        verify(spec, models_dir)
        assert calls == []  # trusted by size, mtime and inode
        model = folder / "model.onnx"
        data = model.read_bytes()
        model.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, new content
        install._verified.clear()
        with pytest.raises(ModelError, match="checksum mismatch"):
            verify(spec, models_dir)
    finally:
        install.sha256_file = original  # type: ignore[assignment]


def test_missing_file_is_not_installed(default_model_dir: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    folder = _copy_default(default_model_dir, models_dir)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelNotInstalledError, match="magray models install default"):
        verify(model_spec("default"), models_dir)


def test_reinstall_repairs_a_corrupt_copy(default_model_dir: Path, tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    folder = _copy_default(default_model_dir, models_dir)
    (folder / "tokenizer.json").write_text("{}")
    assert install_model("default", models_dir) == folder
    assert verify(model_spec("default"), models_dir) == folder


def test_hub_install_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(NetworkError, match="HF_HUB_OFFLINE"):
        install_model("bge-m3", tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    with pytest.raises(NetworkError, match="cannot reach"):
        install_model("bge-m3", tmp_path)
    assert time.perf_counter() - started < 10
    assert not is_installed(model_spec("bge-m3"), tmp_path)


def test_hub_install_without_huggingface_hub_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ModelError, match=r"pip install 'magray\[hub\]'"):
        install_model("qwen3-embedding-0.6b", tmp_path)


def test_user_model_for_a_known_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models_dir = tmp_path / "models"
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models_dir))
    folder = tiny.bert_like(tmp_path / "my-bge", token_type_ids=False)
    spec = register_user_model(models_dir, "bge-m3", folder, dim=16)
    assert spec.pooling == "cls" and spec.source == "user"
    assert model_spec("bge-m3", models_dir).path == str(folder)
    emb = load_embedder(load_settings(), "bge-m3", cached=False)
    assert emb.embed_queries(["red cat"]).shape == (1, 16)
    assert remove_model("bge-m3", models_dir)
    assert model_spec("bge-m3", models_dir).source == "hub"


def test_user_model_custom_needs_pooling_and_dim(tmp_path: Path) -> None:
    folder = tiny.decoder_like(tmp_path / "dec")
    with pytest.raises(UsageError, match="--pooling and --dim"):
        register_user_model(tmp_path, "my-decoder", folder)
    spec = register_user_model(tmp_path, "my-decoder", folder, pooling="last_token", dim=8)
    assert [s.name for s in user_specs(tmp_path)] == ["my-decoder"]
    assert spec.padding_side == "right"
    with pytest.raises(NotFoundError, match=r"no folder .*nothing-here"):
        register_user_model(tmp_path, "x", tmp_path / "nothing-here", pooling="mean", dim=4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=r"lacks model\.onnx"):
        register_user_model(tmp_path, "x", tmp_path / "empty", pooling="mean", dim=4)


def test_changed_user_file_is_detected(tmp_path: Path) -> None:
    folder = tiny.bert_like(tmp_path / "bert")
    spec = register_user_model(tmp_path, "mine", folder, pooling="mean", dim=16)
    with (folder / "tokenizer.json").open("a") as fh:
        fh.write(" ")
    with pytest.raises(ModelError, match="changed since it was added"):
        verify(spec, tmp_path)


def test_load_reranker_none_when_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path))
    assert load_reranker(load_settings()) is None
    assert load_reranker(load_settings(), "bge-reranker-v2-m3") is None
