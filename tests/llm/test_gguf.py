"""Reading a GGUF header: a file written here, and the real models' headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from magray.errors import ModelError
from magray.llm.gguf import read_info


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, template: str | None) -> Path:
    kvs = [
        _string("general.architecture") + struct.pack("<I", 8) + _string("qwen2"),
        _string("qwen2.context_length") + struct.pack("<I", 4) + struct.pack("<I", 32768),
        # an array of strings and one of numbers must be skipped correctly
        _string("tokenizer.ggml.tokens")
        + struct.pack("<I", 9)
        + struct.pack("<I", 8)
        + struct.pack("<Q", 2)
        + _string("a")
        + _string("bc"),
        _string("tokenizer.ggml.scores")
        + struct.pack("<I", 9)
        + struct.pack("<I", 6)
        + struct.pack("<Q", 3)
        + struct.pack("<3f", 0.1, 0.2, 0.3),
    ]
    if template is not None:
        kvs.append(_string("tokenizer.chat_template") + struct.pack("<I", 8) + _string(template))
    header = b"GGUF" + struct.pack("<I", 3) + struct.pack("<Q", 0) + struct.pack("<Q", len(kvs))
    path.write_bytes(header + b"".join(kvs) + b"\0" * 32)
    return path


def test_reads_architecture_context_and_template(tmp_path: Path) -> None:
    info = read_info(write_gguf(tmp_path / "chat.gguf", "{{ messages }}"))
    assert (info.architecture, info.context_length, info.chat_template) == (
        "qwen2",
        32768,
        "{{ messages }}",
    )
    assert read_info(write_gguf(tmp_path / "base.gguf", None)).chat_template is None


def test_not_a_gguf_or_truncated_is_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "x.gguf").write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelError, match="is not a readable GGUF model"):
        read_info(tmp_path / "x.gguf")
    whole = write_gguf(tmp_path / "t.gguf", "tpl").read_bytes()
    (tmp_path / "t.gguf").write_bytes(whole[:60])
    with pytest.raises(ModelError, match="truncated"):
        read_info(tmp_path / "t.gguf")


def test_the_real_gemma_header(local_gguf: Path) -> None:
    info = read_info(local_gguf)
    assert info.architecture == "gemma3" and info.context_length == 32768
    assert info.chat_template is None  # a base model: MAGRAY prompts it by completion
