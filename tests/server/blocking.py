"""An embedder that blocks until released: holds a request in flight without timing."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tests.fakes import HashEmbedder


class BlockingEmbedder(HashEmbedder):
    """``embed_documents`` signals ``entered`` and waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.entered.set()
        self.release.wait()
        return super().embed_documents(texts)
