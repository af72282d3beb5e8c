"""An embedder whose model loads on a background thread while the caller does other work.

A fresh ``magray memory search`` spends about as long loading the embedding model (ONNX
Runtime session, tokenizer) as importing and opening the store and its vector indexes; the
two overlap when the model starts loading first. ``model_id`` and ``dim`` come from the
model's spec at once; the first embedding waits for the model, and a loading error (model
not installed, damaged files) is raised there, in the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from magray.embed.base import Embedder, Vectors
    from magray.embed.registry import ModelSpec


class BackgroundEmbedder:
    """Wraps ``load()`` (run on a thread started now) behind the ``Embedder`` protocol."""

    def __init__(self, spec: ModelSpec, load: Callable[[], Embedder]) -> None:
        self.spec = spec
        self._inner: Embedder | None = None
        self._error: BaseException | None = None
        self._load = load
        # Not a daemon: an interpreter never exits while ONNX Runtime is half-way through
        # building a session.
        self._thread = threading.Thread(target=self._run, name="magray-embedder-load")
        self._thread.start()

    def _run(self) -> None:
        try:
            self._inner = self._load()
        except BaseException as exc:  # re-raised in the caller's thread on first use
            self._error = exc

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def dim(self) -> int:
        return self.spec.dim

    def loaded(self) -> Embedder:
        """The embedder, once its model has loaded (raises what loading raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._inner is not None
        return self._inner

    def __getattr__(self, name: str) -> object:  # provider, session, ... of the loaded one
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.loaded(), name)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self.loaded().embed_documents(texts)

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self.loaded().embed_queries(texts)
