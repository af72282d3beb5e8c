"""Ingest of files and folders into a real store: incremental, .gitignore-aware."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from magray.config import load_settings
from magray.errors import NotFoundError
from magray.memory.ingest.pipeline import ingest
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
    real = tree.resolve()
    assert uris == {f"{real}/README.md", f"{real}/docs/guide.md", f"{real}/tool.py"}
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
    assert uris == {f"{real}/README.md", f"{real}/docs/guide.md"}
    hits = memory.recall(Query(text="emperor penguins huddle", k=1, mode=SearchMode.KEYWORD))
    assert hits[0].record.source is not None
    src = hits[0].record.source
    assert src.uri == f"{real}/docs/guide.md"
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


def test_ingest_forgets_only_under_the_folders_it_walked(tmp_path: Path) -> None:
    notes, code = tmp_path / "notes", tmp_path / "code"
    notes.mkdir()
    code.mkdir()
    (notes / "a.md").write_text("# Notes\n\nPenguins live in the south.\n")
    (code / "b.py").write_text("def fly():\n    return False\n")
    memory = make(HashEmbedder())
    assert ingest(memory, [notes], root=notes).files_added == 1
    second = ingest(memory, [code], root=code)
    assert (second.files_added, second.files_removed) == (1, 0)
    # the same folder reached another way, from another folder, and through a link
    (tmp_path / "link").symlink_to(notes)
    for path, root in ((notes, tmp_path), (tmp_path / "link", code)):
        again = ingest(memory, [path], root=root)
        assert (again.files_unchanged, again.files_added, again.files_removed) == (1, 0, 0)
    assert memory.backend.count() == 2
    (notes / "a.md").unlink()
    gone = ingest(memory, [notes], root=code)
    assert gone.removed == [f"{notes.resolve()}/a.md"] and memory.backend.count() == 1


def test_named_file_that_turned_binary_is_forgotten_and_unreadable_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = make(HashEmbedder())
    doc = tmp_path / "doc.txt"
    doc.write_text("plain words about penguins\n")
    ingest(memory, [doc], root=tmp_path)
    doc.write_bytes(b"x" * 9000 + b"\0tail")
    report = ingest(memory, [doc], root=tmp_path)
    assert ("doc.txt", "binary") in report.skipped and report.files_removed == 1

    folder = tmp_path / "locked"
    (folder / "inner").mkdir(parents=True)
    (folder / "inner" / "n.md").write_text("kept while unreadable\n")
    ingest(memory, [folder], root=tmp_path)
    real_scandir = os.scandir

    def deny(path: Any) -> Any:
        if Path(path).name == "inner":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", deny)
    report = ingest(memory, [folder], root=tmp_path)
    assert ("locked/inner", "unreadable") in report.skipped
    assert report.files_removed == 0 and memory.backend.count() == 1


def test_link_left_broken_by_a_deleted_file_is_reported_and_the_file_forgotten(
    tmp_path: Path,
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Notes\n\nPenguins live in the south.\n")
    (notes / "b.md").symlink_to(notes / "a.md")
    memory = make(HashEmbedder())
    assert ingest(memory, [notes], root=tmp_path).files_added == 1
    (notes / "a.md").unlink()
    report = ingest(memory, [notes], root=tmp_path)
    assert report.skipped == [("notes/b.md", "broken symlink (its target does not exist)")]
    assert report.files_removed == 1 and memory.backend.count() == 0


def test_relative_sources_of_an_older_store_are_adopted(tree: Path) -> None:
    memory = make(HashEmbedder())
    ingest(memory, [tree], root=tree)
    real = tree.resolve()
    with memory.backend.store.write() as conn:  # what an older MAGRAY stored, run from tree
        for table, column in (("records", "source_uri"), ("ingested_sources", "uri")):
            conn.execute(
                f"UPDATE {table} SET {column} = substr({column}, ?)", (len(str(real)) + 2,)
            )
    (tree / "tool.py").write_text("def fly():\n    return 'changed, so not adopted'\n")
    report = ingest(memory, [tree], root=tree)
    assert (report.files_unchanged, report.files_added, report.files_removed) == (2, 1, 0)
    uris = {r.source.uri for r in memory.list_records(limit=100) if r.source}
    assert {f"{real}/README.md", f"{real}/docs/guide.md", "tool.py"} <= uris
    assert verify(memory).checked["relative_sources"] == 1


def test_lost_chunks_are_reported_by_verify_and_restored_by_ingest(tree: Path) -> None:
    memory = make(HashEmbedder())
    ingest(memory, [tree], root=tree)
    memory.sync_indexes()
    guide = f"{tree.resolve()}/docs/guide.md"
    with memory.backend.store.write() as conn:
        conn.execute("DELETE FROM records WHERE source_uri = ?", (guide,))
    memory.sync_indexes()
    report = verify(memory)
    assert not report.ok
    [problem] = report.problems
    assert guide in problem and f"magray ingest {guide} --layer assets" in problem
    again = ingest(memory, [tree], root=tree)
    assert again.restored == [guide] and again.files_updated == 1 and again.chunks_added >= 1
    memory.sync_indexes()
    assert verify(memory).ok


def test_progress_counts_files_against_a_known_total(tree: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    ingest(make(HashEmbedder()), [tree], root=tree, progress=lambda d, t: calls.append((d, t)))
    assert calls and all(t == 3 for _, t in calls)  # README, guide, tool.py (logo: binary)
    assert calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_piped_progress_bar_prints_a_heartbeat(capsys: pytest.CaptureFixture[str]) -> None:
    from magray.cli import render

    bar = render.ProgressBar(None, "ingesting files")
    now = [0.0]
    bar._clock = lambda: now[0]
    bar._last = 0.0
    bar(1, 10)
    assert capsys.readouterr().err == ""  # quiet until a long job has run a while
    now[0] = render.HEARTBEAT_S + 1
    bar(7, 10)
    assert "ingesting files: 7/10" in capsys.readouterr().err


def test_records_of_chunks_inside_a_table_hold_its_header(tmp_path: Path) -> None:
    rows = "\n".join(
        f"| `key.{i}` | `{i * 3}` | Meaning of key {i}, at some length. |" for i in range(60)
    )
    doc = tmp_path / "settings.md"
    doc.write_text(f"# Settings\n\n| key | default | meaning |\n|---|---|---|\n{rows}\n")
    memory = make(HashEmbedder())
    ingest(memory, [doc], root=tmp_path)
    records = [r for r in memory.list_records(limit=100) if r.source]
    assert len(records) >= 3
    text = doc.read_text()
    for r in records:
        assert r.source is not None and r.source.start is not None
        own = text[r.source.start : r.source.end]
        assert r.text.endswith(own)  # the slice at the offsets, after its lead
        assert r.text.startswith("# Settings") or own.startswith("# Settings")
        if own.startswith("| `key."):
            assert r.text == f"# Settings\n| key | default | meaning |\n|---|---|---|\n{own}"
    hits = memory.recall(Query(text="key default meaning key.50", k=1, mode=SearchMode.KEYWORD))
    assert hits[0].record.text.startswith("# Settings\n| key | default | meaning |")


def test_files_chunked_by_an_older_chunker_are_chunked_again(tree: Path) -> None:
    memory = make(HashEmbedder())
    guide = tree / "docs" / "guide.md"
    guide.write_text(
        "# Guide\n\n" + "".join(f"## Part {i}\n\n" + "Words here. " * 40 + "\n\n" for i in range(4))
    )
    ingest(memory, [tree], root=tree)
    with memory.backend.store.write() as conn:  # what version 1 recorded: the bare file hash
        conn.execute("UPDATE ingested_sources SET content_hash = substr(content_hash, 1, 64)")
    memory.sync_indexes()
    assert verify(memory).ok  # not "lost": the next ingest chunks them again anyway
    report = ingest(memory, [tree], root=tree)
    assert report.files_updated == 3 and report.files_unchanged == 0
    assert report.chunks_kept >= 1  # chunks whose stored text is the same keep their records
    again = ingest(memory, [tree], root=tree)
    assert again.files_unchanged == 3 and again.chunks_added == 0
    memory.sync_indexes()
    assert verify(memory).ok
