"""`models install` and `models add` with careless input: one line, nothing registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_errors_cli import fails, run
from tests.embed import tiny


def test_install_of_an_unknown_name_lists_the_local_llms_too() -> None:
    line = fails(run(["models", "install", "nosuch"]), 3, "unknown model 'nosuch'")
    assert "all-minilm-l6-v2" in line and "local LLMs: local, qwen2.5-1.5b, local-tiny" in line
    fails(run(["models", "install", " "]), 2, "the model name is empty")


@pytest.mark.parametrize("command", ["info", "install", "remove"])
@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("all-minilm", "did you mean all-minilm-l6-v2 or all-minilm-l6-v2-int8?"),
        ("default-int9", "did you mean default-int8 or default?"),
        ("gemma", "did you mean gemma-3-270m?"),
        ("Qwen2.5-Coder", "did you mean qwen2.5-coder-0.5b or qwen2.5-coder-1.5b?"),
    ],
)
def test_a_near_miss_names_the_close_models_and_the_list(
    command: str, name: str, suggested: str
) -> None:
    line = fails(run(["models", command, name]), 3, f"unknown model {name!r}; {suggested}")
    assert "`magray models list`" in line and "bge-m3" in line


def test_an_unknown_name_far_from_every_model_has_no_suggestion() -> None:
    line = fails(run(["models", "info", "xyzzy"]), 3, "unknown model 'xyzzy'; embedders")
    assert "did you mean" not in line
    fails(run(["models", "info", " "]), 2, "the model name is empty")


def test_config_set_of_a_near_miss_model_suggests_it() -> None:
    fails(run(["config", "set", "embed.model", "all-minilm"]), 1, "did you mean all-minilm-l6-v2")


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--pooling", "mean", "--dim", "0"], "--dim must be 1 to 65,536 (got 0)"),
        (["--pooling", "mean", "--dim", "-1"], "--dim must be 1 to 65,536 (got -1)"),
        (["--pooling", "mean", "--dim", "99999999999"], "--dim must be 1 to 65,536"),
        (["--pooling", "mean", "--dim", "8", "--max-length", "0"], "--max-length must be 1"),
        (["--pooling", "sum", "--dim", "8"], "--pooling must be one of"),
    ],
)
def test_add_refuses_sizes_no_model_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: list[str], needle: str
) -> None:
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(tmp_path / "models"))
    folder = tiny.decoder_like(tmp_path / "dec")
    fails(run(["models", "add", "mine", str(folder), *extra]), 2, needle)
    listed = run(["models", "list", "--json"])
    assert '"mine"' not in listed.stdout


def test_add_names_a_missing_folder_and_a_file(tmp_path: Path) -> None:
    fails(run(["models", "add", "mine", str(tmp_path / "nope")]), 3, "no folder")
    file = tmp_path / "model.onnx"
    file.write_bytes(b"\x00\x01")
    fails(run(["models", "add", "mine", str(file)]), 2, "is a file; give the folder")
