"""``OnnxReranker``: a cross-encoder that scores (query, passage) pairs with one logit each."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from magray.embed.onnx import feed_for, sorted_batches
from magray.embed.registry import MODEL_FILE, TOKENIZER_FILE, ModelSpec
from magray.embed.session import OnnxSession, SessionFactory
from magray.embed.tokenize import TextTokenizer
from magray.errors import ModelError


class OnnxReranker:
    """A ``Reranker`` backed by an ONNX cross-encoder whose first output is the logits."""

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        *,
        device: str = "auto",
        threads: int = 0,
        batch_size: int = 16,
        session_factory: SessionFactory | None = None,
    ) -> None:
        if spec.kind != "reranker":
            raise ModelError(f"{spec.name} is an {spec.kind}, not a reranker.")
        self.spec = spec
        self.batch_size = max(1, batch_size)
        self.tokenizer = TextTokenizer(folder / TOKENIZER_FILE, spec.max_length, "right")
        self.session = OnnxSession(
            folder / MODEL_FILE, device=device, threads=threads, factory=session_factory
        )

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def provider(self) -> str:
        return self.session.provider

    def score(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float32]:
        """One relevance logit per passage (higher is more relevant), in input order."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        encoded = self.tokenizer.encode([(query, p) for p in passages])
        scores = np.empty(len(passages), dtype=np.float32)
        for rows in sorted_batches(encoded, self.batch_size):
            padded = self.tokenizer.pad([encoded[i] for i in rows])
            logits = np.asarray(self.session.run(feed_for(self.session, padded))[0], np.float32)
            scores[rows] = logits.reshape(len(rows), -1)[:, 0]
        return scores
