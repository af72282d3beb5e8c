"""Read a GGUF file's metadata (its key/value header) without loading the weights.

Enough to learn what a user's model can do before llama.cpp loads it: its architecture,
the context length it was trained for and whether it carries a chat template.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from magray.errors import ModelError

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q"}
_SCALARS |= {11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    architecture: str
    context_length: int
    chat_template: str | None


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = fh.read(size)
    if len(data) != size:
        raise EOFError
    return struct.unpack(fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    n = _read(fh, "<Q")
    data = fh.read(n)
    if len(data) != n:
        raise EOFError
    return data.decode("utf-8", errors="replace")


def _value(fh: BinaryIO, kind: int) -> Any:
    if kind == _STRING:
        return _string(fh)
    if kind == _ARRAY:
        item, count = _read(fh, "<I"), _read(fh, "<Q")
        if item in _SCALARS:  # skip numeric arrays in one seek
            fh.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):
                _value(fh, item)
        return None
    if kind not in _SCALARS:
        raise ValueError(f"unknown GGUF value type {kind}")
    return _read(fh, _SCALARS[kind])


def read_info(path: Path) -> GGUFInfo:
    """The metadata MAGRAY needs; ModelError when ``path`` is not a GGUF file."""
    values: dict[str, Any] = {}
    try:
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ValueError("not a GGUF file")
            version = _read(fh, "<I")
            if version < 2:
                raise ValueError(f"GGUF version {version} is too old")
            _read(fh, "<Q")  # tensor count
            for _ in range(_read(fh, "<Q")):
                key = _string(fh)
                values[key] = _value(fh, _read(fh, "<I"))
    except (OSError, EOFError, ValueError, struct.error) as exc:
        raise ModelError(f"{path} is not a readable GGUF model ({exc or 'truncated'}).") from None
    arch = str(values.get("general.architecture") or "")
    template = values.get("tokenizer.chat_template")
    return GGUFInfo(
        architecture=arch,
        context_length=int(values.get(f"{arch}.context_length") or 0),
        chat_template=str(template) if template else None,
    )
