"""Ingest of files and folders into a real store: incremental, .gitignore-aware."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import NotFoundError
from magray.memory.ingest import ingest
from magray.memory.maintenance import verify
from magray.memory.records import Filters, Layer, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "docs").mkdir(parents=True)
    (root / "build").mkdir()
    (root / ".gitignore").write_text("secret.md\n")
    (root / "README.md").write_text("# Demo\n\nThe demo project stores penguins.\n")
    (root / "docs" / "guide.md").write_text(
        "# Guide\n\n## Install\n\nRun make install.\n\n## Use\n\nAsk about penguins.\n"
    )
    (root / "docs" / "secret.md").write_text("the password is hunter2\n")
    (root / "build" / "out.txt").write_text("generated\n")
    (root / "tool.py").write_text("def fly():\n    return 'penguins cannot fly'\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    return root


def make(embedder: HashEmbedder) -> Memory:
    return Memory(load_settings({"memory.auto_lifecycle": False}), embedder=embedder)


def test_ingest_is_incremental(tree: Path) -> None:
    embedder = HashEmbedder()
    memory = make(embedder)
    first = ingest(memory, [tree], project="demo", root=tree)
    assert first.files_added == 3
    uris = {r.source.uri for r in memory.list_records(limit=100) if r.source}
    assert uris == {"README.md", "docs/guide.md", "tool.py"}
    assert ("logo.png", "binary") in first.skipped
    records = memory.list_records(limit=100)
    assert all(r.layer is Layer.ASSETS and r.project == "demo" for r in records)

    calls = embedder.calls
    again = ingest(memory, [tree], project="demo", root=tree)
    assert again.files_unchanged == 3 and again.chunks_added == 0
    assert embedder.calls == calls  # nothing re-embedded

    guide = tree / "docs" / "guide.md"
    guide.write_text(guide.read_text() + "\n## Extra\n\nEmperor penguins huddle in winter.\n")
    (tree / "tool.py").unlink()
    changed = ingest(memory, [tree], project="demo", root=tree)
    assert changed.files_updated == 1
    assert changed.files_removed == 1
    assert changed.chunks_added >= 1
    uris = {r.source.uri for r in memory.list_records(limit=100) if r.source}
    assert uris == {"README.md", "docs/guide.md"}
    hits = memory.recall(Query(text="emperor penguins huddle", k=1, mode=SearchMode.KEYWORD))
    assert hits[0].record.source is not None
    src = hits[0].record.source
    assert src.uri == "docs/guide.md"
    assert src.start is not None and src.end is not None
    assert guide.read_text()[src.start : src.end] == hits[0].record.text
    memory.sync_indexes()
    assert verify(memory).ok


def test_ingest_keeps_unchanged_chunks_of_a_changed_file(tree: Path) -> None:
    memory = make(HashEmbedder())
    big = tree / "notes.md"
    sections = [f"## Part {i}\n\n" + f"Paragraph {i} about topic {i}. " * 30 for i in range(6)]
    big.write_text("\n\n".join(sections))
    ingest(memory, [big], root=tree)
    before = {r.text: r.id for r in memory.list_records(limit=100)}
    big.write_text("\n\n".join([*sections, "## Part new\n\nA brand new ending."]))
    report = ingest(memory, [big], root=tree)
    after = {r.text: r.id for r in memory.list_records(limit=100)}
    assert report.chunks_kept >= 1
    kept = set(before) & set(after)
    assert kept and all(before[t] == after[t] for t in kept)


def test_ingest_into_a_layer_and_filter(tree: Path) -> None:
    memory = make(HashEmbedder())
    ingest(memory, [tree / "README.md"], layer=Layer.INSIGHTS, project="p1", root=tree)
    hits = memory.recall(
        Query(text="penguins", filters=Filters(layers=(Layer.INSIGHTS,), project="p1"))
    )
    assert hits and hits[0].record.kind == "markdown"


def test_missing_path_is_not_found(tree: Path) -> None:
    memory = make(HashEmbedder())
    with pytest.raises(NotFoundError):
        ingest(memory, [tree / "nope"], root=tree)
