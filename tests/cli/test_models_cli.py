"""`magray models ...` and `magray bench embed` through the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from tests.embed import tiny

runner = CliRunner()


def test_list_json(default_model_dir: Path) -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"all-minilm-l6-v2", "all-minilm-l6-v2-int8", "bge-m3", "qwen3-embedding-0.6b"} <= set(
        rows
    )
    default = rows["all-minilm-l6-v2"]
    assert default["installed"] and default["active"] and default["dim"] == 384
    assert default["provider"] == "CPUExecutionProvider"
    assert not rows["bge-m3"]["installed"]


def test_list_shows_a_dash_for_the_dimension_of_an_llm(default_model_dir: Path) -> None:
    table = runner.invoke(app, ["models", "list"]).stdout.splitlines()
    llm = next(line for line in table if line.startswith("qwen2.5-coder-0.5b"))
    assert llm.split()[1:3] == ["llm", "-"]
    embedder = next(line for line in table if line.startswith("all-minilm-l6-v2 "))
    assert embedder.split()[1:3] == ["embedder", "384"]


def test_info_shows_the_active_provider(default_model_dir: Path) -> None:
    result = runner.invoke(app, ["models", "info", "default", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["provider"] == "CPUExecutionProvider"
    assert info["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    text = runner.invoke(app, ["models", "info", "default"])
    assert "provider" in text.stdout and "all-minilm-l6-v2" in text.stdout


def test_install_twice_says_already_installed(default_model_dir: Path) -> None:
    result = runner.invoke(app, ["models", "install", "default"])
    assert result.exit_code == 0
    assert "already installed" in result.stderr


def test_unknown_model_exits_3() -> None:
    result = runner.invoke(app, ["models", "info", "no-such-model"])
    assert result.exit_code == 3
    assert "unknown model" in result.stderr


def test_hub_install_offline_exits_5(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = runner.invoke(app, ["models", "install", "bge-m3"])
    assert result.exit_code == 5
    assert result.stderr.count("\n") == 1


def test_add_and_remove_a_user_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path / "models"))
    folder = tiny.decoder_like(tmp_path / "dec")
    args = ["models", "add", "my-dec", str(folder), "--pooling", "last_token", "--dim", "8"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    mine = next(r for r in rows if r["name"] == "my-dec")
    assert mine["installed"] and mine["source"] == "user" and mine["pooling"] == "last_token"
    assert runner.invoke(app, ["models", "remove", "my-dec"]).exit_code == 0
    assert runner.invoke(app, ["models", "remove", "my-dec"]).exit_code == 3
    assert folder.exists()  # the user's files stay


def test_bench_embed_json(default_model_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "\n".join(json.dumps({"title": f"t{i}", "text": "memory " * i}) for i in range(8))
    )
    args = ["bench", "embed", "--threads", "1", "--corpus", str(corpus), "--repeat", "1"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"] == "all-minilm-l6-v2" and report["texts"] == 8
    assert report["threads"] == 1 and report["magray_per_s"] > 0 and report["raw_ort_per_s"] > 0
    assert report["rows"][0]["threads"] == 1


def test_install_repairs_a_corrupt_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = tmp_path / "models"
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models))
    assert runner.invoke(app, ["models", "install", "default"]).exit_code == 0
    onnx = models / "all-minilm-l6-v2" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[5000] ^= 0xFF
    onnx.write_bytes(bytes(data))
    broken = runner.invoke(app, ["memory", "add", "hello"])
    assert broken.exit_code == 1
    assert "magray models install all-minilm-l6-v2" in broken.stderr
    repaired = runner.invoke(app, ["models", "install", "default"])
    assert repaired.exit_code == 0
    assert repaired.stdout.startswith("reinstalled all-minilm-l6-v2")
    assert "corrupt" in repaired.stderr
    assert runner.invoke(app, ["memory", "add", "hello"]).exit_code == 0
