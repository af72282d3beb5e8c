"""Tokenize texts with a model's ``tokenizer.json``: truncation at the model limit, dynamic
padding per batch (right or left), and a count of the texts that were cut."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from magray.errors import ModelError

PAD_TOKENS = ("[PAD]", "<pad>", "<|endoftext|>")
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Encoded:
    """Token ids of one text (or text pair) and whether it was truncated."""

    ids: tuple[int, ...]
    type_ids: tuple[int, ...]
    truncated: bool


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with MAGRAY's padding and truncation rules."""

    def __init__(self, path: Path, max_length: int, padding_side: str = "right") -> None:
        from tokenizers import Tokenizer

        try:
            self._tok: Any = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelError(f"{path} is not a valid tokenizer.json ({exc}).") from None
        self._tok.no_padding()
        self._tok.enable_truncation(max_length)
        self.max_length = max_length
        self.padding_side = padding_side
        self.pad_id = next(
            (i for t in PAD_TOKENS if (i := self._tok.token_to_id(t)) is not None), 0
        )

    def encode(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> list[Encoded]:
        """Encode texts (or (query, passage) pairs), truncating at ``max_length``."""
        encodings = self._tok.encode_batch(list(texts))
        # A text with no tokens at all (some tokenizers add no specials) gets one pad token,
        # attended to, so every row has something to pool.
        return [
            Encoded(tuple(e.ids) or (self.pad_id,), tuple(e.type_ids) or (0,), bool(e.overflowing))
            for e in encodings
        ]

    def pad(self, batch: Sequence[Encoded]) -> dict[str, IntArray]:
        """Pad ``batch`` to its longest member: ``input_ids``, ``attention_mask``, ...

        Also gives ``token_type_ids`` and ``position_ids`` (0.. over real tokens) so any
        model can take what its graph asks for.
        """
        longest = max((len(e.ids) for e in batch), default=0) or 1
        n = len(batch)
        ids = np.full((n, longest), self.pad_id, dtype=np.int64)
        types = np.zeros((n, longest), dtype=np.int64)
        mask = np.zeros((n, longest), dtype=np.int64)
        for row, e in enumerate(batch):
            size = len(e.ids)
            cols = slice(longest - size, longest) if self.padding_side == "left" else slice(0, size)
            ids[row, cols] = e.ids
            types[row, cols] = e.type_ids
            mask[row, cols] = 1
        positions = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": types,
            "position_ids": positions,
        }
