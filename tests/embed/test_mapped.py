"""The mapped copy of a model: same vectors, written once, rewritten when the model changes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from magray.embed.mapped import mapped_model
from magray.embed.session import OnnxSession, _ort_session

TEXTS = ["the database listens on port 5433", "staging deploys on Fridays", "x"]


def _copy(default_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(default_model_dir, folder, ignore=shutil.ignore_patterns("*.mapped*"))
    return folder / "model.onnx"


def _plain(path: str, options: Any, providers: list[str]) -> Any:
    return _ort_session(path, options, providers)  # a factory seam: never the mapped copy


def _run(session: OnnxSession) -> Any:
    ids = np.array([[101, 2023, 2003, 1037, 3231, 102]], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}
    return session.run({n: feed[n] for n in session.input_names})[0]


def test_same_outputs_from_the_mapped_copy(default_model_dir: Path, tmp_path: Path) -> None:
    model = _copy(default_model_dir, tmp_path)
    mapped = OnnxSession(model, device="cpu", threads=1)
    assert (model.parent / "model.mapped.onnx").is_file()
    [data] = model.parent.glob("model.mapped.*.data")
    assert data.stat().st_size > 0.9 * model.stat().st_size  # the weights live there
    plain = OnnxSession(model, device="cpu", threads=1, factory=_plain)
    assert np.array_equal(_run(mapped), _run(plain))


def test_written_once_and_again_when_the_model_changes(
    default_model_dir: Path, tmp_path: Path
) -> None:
    model = _copy(default_model_dir, tmp_path)
    first = mapped_model(model)
    [data] = model.parent.glob("model.mapped.*.data")
    stamp = first.stat().st_mtime_ns
    assert mapped_model(model) == first and first.stat().st_mtime_ns == stamp
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    assert mapped_model(model) == first
    [again] = model.parent.glob("model.mapped.*.data")
    assert again != data  # rewritten, and the old weights file is gone


def test_a_users_own_model_is_left_alone(default_model_dir: Path, tmp_path: Path) -> None:
    model = _copy(default_model_dir, tmp_path)
    (model.parent / "manifest.json").unlink()
    assert mapped_model(model) == model
    assert not list(model.parent.glob("model.mapped*"))


def test_a_model_onnx_cannot_read_is_loaded_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}", encoding="utf-8")
    (folder / "model.onnx").write_bytes(b"not a model")
    assert mapped_model(folder / "model.onnx") == folder / "model.onnx"
