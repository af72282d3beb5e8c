"""The SQLite embedding cache and ``CachedEmbedder``."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from magray.config import load_settings
from magray.embed import load_embedder
from magray.embed.base import Embedder
from magray.embed.cache import CachedEmbedder, EmbeddingCache
from tests.fakes import HashEmbedder


def test_only_misses_are_embedded(tmp_path: Path) -> None:
    inner = HashEmbedder()
    cached = CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.db"))
    assert isinstance(cached, Embedder)
    first = cached.embed_documents(["alpha", "beta", "alpha"])
    assert cached.stats() == {"hits": 0, "misses": 3} and inner.calls == 1
    again = cached.embed_documents(["beta", "alpha", "gamma"])
    assert cached.stats() == {"hits": 2, "misses": 4} and inner.calls == 2
    np.testing.assert_array_equal(again[:2], first[[1, 0]])
    np.testing.assert_array_equal(again, inner.embed_documents(["beta", "alpha", "gamma"]))
    cached.embed_documents(["alpha", "beta"])
    assert inner.calls == 3  # the direct call above; the cache answered this one alone
    assert cached.embed_documents([]).shape == (0, 64)


def test_model_ids_and_queries_do_not_mix(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.db")
    a = CachedEmbedder(HashEmbedder(64, "model-a"), cache)
    b = CachedEmbedder(HashEmbedder(64, "model-b"), cache)
    a.embed_documents(["x"])
    b.embed_documents(["x"])
    a.embed_queries(["x"])
    assert (a.misses, b.misses) == (2, 1)
    assert cache.count("model-a") == 1 and cache.count() == 3


def _writer(path: str, start: int) -> None:
    cached = CachedEmbedder(HashEmbedder(), EmbeddingCache(Path(path)))
    for i in range(20):
        cached.embed_documents([f"text {start + i}", f"shared {i}"])


def test_concurrent_processes_share_the_cache(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    EmbeddingCache(Path(path)).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, n * 100)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = EmbeddingCache(Path(path))
    assert cache.count("hash-64") == 3 * 20 + 20


def test_load_embedder_caches_in_the_data_dir(default_model_dir: Path) -> None:
    settings = load_settings()
    emb = load_embedder(settings)
    assert isinstance(emb, CachedEmbedder)
    emb.embed_documents(["MAGRAY keeps a cache"])
    assert (settings.paths.data_dir / "embed-cache.db").exists()
    again = load_embedder(settings)
    again.embed_documents(["MAGRAY keeps a cache"])
    assert isinstance(again, CachedEmbedder) and again.stats() == {"hits": 1, "misses": 0}
    assert again.model_id == "all-minilm-l6-v2" and again.dim == 384


def test_cached_queries_answers_only_what_the_cache_holds(tmp_path: Path) -> None:
    inner = HashEmbedder()
    cached = CachedEmbedder(inner, EmbeddingCache(tmp_path / "c.db"))
    cached.embed_documents(["alpha"])  # a document vector is not a query vector
    assert cached.cached_queries(["alpha"]) is None and cached.cached_queries([]) is None
    made = cached.embed_queries(["alpha", "beta"])
    calls = inner.calls
    got = cached.cached_queries(["beta", "alpha"])
    assert got is not None and inner.calls == calls  # nothing embedded
    np.testing.assert_array_equal(got, made[[1, 0]])
    assert cached.cached_queries(["alpha", "gamma"]) is None  # one missing: None
    assert inner.calls == calls


def test_a_cache_that_cannot_be_opened_is_skipped_with_a_warning(
    magray_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a full disk or a read-only folder: the cache only saves re-embedding, so texts are
    # embedded without it instead of failing the search or the ingest
    from magray.embed import _with_cache

    settings = load_settings()
    settings.paths.data_dir.mkdir(parents=True, exist_ok=True)
    settings.paths.embed_cache_db.mkdir()  # a folder where the database file should be
    inner = HashEmbedder()
    with caplog.at_level("WARNING", logger="magray"):
        embedder = _with_cache(settings, inner)
    assert embedder is inner
    assert "embed-cache.db cannot be opened" in caplog.text
    assert "without it" in caplog.text


def test_reads_and_writes_the_disk_refuses_are_skipped_once_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EmbeddingCache(tmp_path / "c.db")
    cached = CachedEmbedder(HashEmbedder(), cache)
    cached.embed_documents(["kept"])
    cache._db.execute("PRAGMA query_only = ON")  # every write now fails, as on a full disk
    with caplog.at_level("WARNING", logger="magray"):
        first = cached.embed_documents(["new one"])
        cached.embed_documents(["another"])
    np.testing.assert_array_equal(first, HashEmbedder().embed_documents(["new one"]))
    assert caplog.text.count("could not write") == 1  # said once per cache
    assert cache.count() == 1
    cache._db.execute("PRAGMA query_only = OFF")
    cache._db.close()  # reads that fail (no table here): they count as misses
    cache._db = sqlite3.connect(":memory:", check_same_thread=False)
    with caplog.at_level("WARNING", logger="magray"):
        again = cached.embed_documents(["kept"])
    np.testing.assert_array_equal(again, HashEmbedder().embed_documents(["kept"]))
