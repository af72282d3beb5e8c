"""``OnnxEmbedder``: texts → L2-normalised vectors with an installed ONNX model.

Texts are tokenized once, sorted by length so each batch carries little padding, padded
per batch, run through ONNX Runtime, pooled as the model's spec says (mean | cls |
last_token) and returned in input order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from magray.embed.base import Vectors
from magray.embed.pooling import l2_normalize, pool
from magray.embed.registry import MODEL_FILE, TOKENIZER_FILE, ModelSpec
from magray.embed.session import OnnxSession, SessionFactory
from magray.embed.tokenize import Encoded, TextTokenizer
from magray.errors import ModelError

log = logging.getLogger("magray")
FEEDABLE = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


def feed_for(session: OnnxSession, padded: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs ``session``'s graph asks for, taken from a padded batch."""
    unknown = [n for n in session.input_names if n not in FEEDABLE]
    if unknown:
        raise ModelError(
            f"{session.path} wants inputs MAGRAY cannot feed ({', '.join(unknown)});"
            " export it with input_ids/attention_mask only."
        )
    return {name: padded[name] for name in session.input_names}


def sorted_batches(encoded: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    """Indexes of ``encoded`` grouped into batches of similar length (longest first)."""
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


_truncated = 0  # texts embedded truncated by this process (see ``truncated_count``)


def truncated_count() -> int:
    """How many texts this process embedded truncated (a long ingest reports the total)."""
    return _truncated


class OnnxEmbedder:
    """An ``Embedder`` backed by an ONNX model folder (model.onnx + tokenizer.json)."""

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        *,
        device: str = "auto",
        threads: int = 0,
        batch_size: int = 32,
        max_length: int = 0,
        session_factory: SessionFactory | None = None,
    ) -> None:
        if spec.kind != "embedder":
            raise ModelError(f"{spec.name} is a {spec.kind}, not an embedding model.")
        self.spec = spec
        self.batch_size = max(1, batch_size)
        limit = min(max_length, spec.max_length) if max_length > 0 else spec.max_length
        self.tokenizer = TextTokenizer(folder / TOKENIZER_FILE, limit, spec.padding_side)
        self.session = OnnxSession(
            folder / MODEL_FILE, device=device, threads=threads, factory=session_factory
        )
        self._checked_dim = False

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def provider(self) -> str:
        return self.session.provider

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Embed texts to be stored (the model's document prefix applied)."""
        return self._embed([self.spec.document_prefix + t for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Embed search queries (the model's query prefix or instruction applied)."""
        return self._embed([self.spec.query_prefix + t for t in texts])

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Tokenize ``texts``; logs one warning with the count of truncated texts."""
        encoded = self.tokenizer.encode(texts)
        cut = sum(e.truncated for e in encoded)
        if cut:
            global _truncated
            if not _truncated:  # once per process; long jobs print the total at the end
                log.warning(
                    "texts longer than %d tokens are embedded truncated (model %s); their full"
                    " text is stored and keyword search sees all of it.",
                    self.tokenizer.max_length,
                    self.spec.name,
                    extra={"magray_truncation": True},  # a job printing its own summary drops it
                )
            _truncated += cut
        return encoded

    def run_batch(self, batch: Sequence[Encoded]) -> Vectors:
        """Pooled, normalised vectors of one batch of encoded texts."""
        padded = self.tokenizer.pad(batch)
        outputs = self.session.run(feed_for(self.session, padded))
        vectors = pool(outputs[0], padded["attention_mask"], self.spec.pooling)
        if not self._checked_dim:
            if vectors.shape[1] != self.spec.dim:
                raise ModelError(
                    f"{self.spec.name} returns {vectors.shape[1]}-d vectors but is registered as"
                    f" {self.spec.dim}-d; register it again with the right --dim."
                )
            self._checked_dim = True
        return l2_normalize(vectors) if self.spec.normalize else vectors

    def _embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = self.encode(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for rows in sorted_batches(encoded, self.batch_size):
            out[rows] = self.run_batch([encoded[i] for i in rows])
        return out
