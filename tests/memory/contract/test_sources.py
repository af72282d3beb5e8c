"""Contract: ingest bookkeeping (one row per ingested file, whole-file writes)."""

from __future__ import annotations

from magray.hashing import content_hash
from magray.memory.backends import Backend
from magray.memory.backends.base import SourceChunk, SourceWrite
from magray.memory.records import Filters, Layer, NewRecord, Source
from tests.fakes import HashEmbedder
from tests.memory.contract.conftest import NOW, vector


def file(
    embedder: HashEmbedder, uri: str, texts: list[str], *, project: str = "", start: int = 0
) -> SourceWrite:
    chunks = []
    for i, text in enumerate(texts):
        src = Source(uri, start + 10 * i, start + 10 * i + len(text), i + 1, i + 1)
        item = NewRecord(text, Layer.ASSETS, "markdown", (), project or None, None, src)
        chunks.append(SourceChunk(item, vector(embedder, text)))
    return SourceWrite(uri, project, Layer.ASSETS, content_hash("|".join(texts)), chunks)


def test_write_sources_adds_keeps_and_removes_chunks(
    backend: Backend, embedder: HashEmbedder
) -> None:
    kw = {"model_id": embedder.model_id, "dim": embedder.dim}
    first = backend.write_sources([file(embedder, "/a.md", ["one", "two"])], now=NOW, **kw)
    assert (first.added, first.kept, first.removed) == (2, 0, 0)
    assert backend.embedding_model() == (embedder.model_id, embedder.dim)
    state = backend.source("/a.md", "", Layer.ASSETS)
    assert state is not None and state.chunks == 2
    assert state.content_hash == content_hash("one|two")
    second = backend.write_sources(
        [file(embedder, "/a.md", ["two", "three"], start=5)], now=NOW + 1, **kw
    )
    assert (second.added, second.kept, second.removed) == (1, 1, 1)
    texts = {r.record.text: r.record for r in backend.iter_records()}
    assert set(texts) == {"two", "three"}
    assert texts["two"].source is not None and texts["two"].source.start == 5
    assert texts["two"].updated_at == NOW + 1 and texts["two"].created_at == NOW
    assert backend.source_chunk_count("/a.md", "", Layer.ASSETS) == 2
    assert backend.source("/a.md", "other", Layer.ASSETS) is None


def test_sources_rename_forget_and_hashes(backend: Backend, embedder: HashEmbedder) -> None:
    kw = {"model_id": embedder.model_id, "dim": embedder.dim}
    backend.write_sources(
        [
            file(embedder, "rel/a.md", ["alpha"], project="p"),
            file(embedder, "/abs/b.md", ["beta", "gamma"], project="p"),
            file(embedder, "/abs/c.md", ["delta"]),
        ],
        now=NOW,
        **kw,
    )
    assert [s.uri for s in backend.sources("p", Layer.ASSETS)] == ["/abs/b.md", "rel/a.md"]
    assert len(backend.sources()) == 3 and backend.sources("p", Layer.INTERACT) == []
    backend.rename_source("rel/a.md", "/abs/a.md", "p", Layer.ASSETS)
    assert [s.uri for s in backend.sources("p")] == ["/abs/a.md", "/abs/b.md"]
    (alpha,) = backend.list_records(Filters(project="p", kind="markdown"), limit=1, offset=2)
    assert alpha.record.source is not None and alpha.record.source.uri == "/abs/a.md"
    hashes = {content_hash(t) for t in ("beta", "gamma", "missing")}
    assert backend.stored_hashes(Layer.ASSETS, "p", hashes) == {
        content_hash("beta"),
        content_hash("gamma"),
    }
    assert backend.stored_hashes(Layer.ASSETS, "", hashes) == set()
    assert backend.forget_sources(["/abs/b.md"], "p", Layer.ASSETS) == 2
    assert backend.source("/abs/b.md", "p", Layer.ASSETS) is None
    assert backend.count() == 2
