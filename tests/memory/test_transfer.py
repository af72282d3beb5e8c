"""JSONL export and validated, all-or-nothing import."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import BackupError
from magray.memory.records import Filters, Layer, NewRecord, Query, SearchMode, Source
from magray.memory.service import Memory
from magray.memory.transfer.jsonl import export, import_
from tests.fakes import HashEmbedder


def make(home: Path | None = None, embedder: HashEmbedder | None = None) -> Memory:
    settings = load_settings()
    if home is not None:
        from magray.paths import Paths

        paths = Paths(home / "config", home / "data", home / "models", home / "logs")
        settings = load_settings(paths_factory=lambda: paths)
    return Memory(settings, embedder=embedder or HashEmbedder())


@pytest.fixture
def source() -> Memory:
    memory = make()
    memory.remember_many(
        [
            NewRecord(
                text="The staging database listens on port 5433",
                layer=Layer.INSIGHTS,
                tags=("infra", "db"),
                project="demo",
                importance=0.9,
            ),
            NewRecord(
                text="Deploys run every Tuesday",
                session="s1",
                kind="fact",
                occurred_at=time.time() - 3600.0,
            ),
            NewRecord(
                text="Use ruff before every commit",
                layer=Layer.ASSETS,
                pinned=True,
                source=Source("docs/style.md", 0, 28, 1, 1),
            ),
            NewRecord(text="Кошка спит на диване", tags=("ru",)),
        ]
    )
    memory.recall(Query(text="ruff commit", k=1))  # access stats to carry over
    return memory


def records(memory: Memory) -> list[object]:
    return sorted((row.record for row in memory.backend.iter_records()), key=lambda r: r.id)


def dump(memory: Memory, **kwargs: object) -> str:
    out = io.StringIO()
    export(memory, out, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def test_export_writes_header_then_one_record_per_line(source: Memory) -> None:
    lines = dump(source, filters=Filters(layers=(Layer.INTERACT,))).splitlines()
    header = json.loads(lines[0])
    assert header["magray_export"] == 1 and header["model"] == "hash-64" and header["dim"] == 64
    rows = [json.loads(x) for x in lines[1:]]
    assert {r["layer"] for r in rows} == {"interact"} and len(rows) == 2
    assert "vector" not in rows[0]


@pytest.mark.parametrize("with_vectors", [True, False])
def test_export_import_round_trips_exactly(
    source: Memory, tmp_path: Path, with_vectors: bool
) -> None:
    text = dump(source, with_vectors=with_vectors)
    embedder = HashEmbedder()
    with make(tmp_path / "other", embedder) as target:
        report = import_(target, io.StringIO(text))
        assert report.imported == 4 and report.duplicates == 0 and not report.skipped_bad
        assert records(target) == records(source)
        assert embedder.calls == (0 if with_vectors else 1)
        assert report.embedded == (0 if with_vectors else 4)
        hits = target.recall(Query(text="database port", k=1, mode=SearchMode.VECTOR))
        assert "5433" in hits[0].record.text
        again = import_(target, io.StringIO(text))
        assert again.imported == 0 and again.duplicates == 4


def test_vectors_of_another_model_are_re_embedded(source: Memory, tmp_path: Path) -> None:
    text = dump(source, with_vectors=True)
    embedder = HashEmbedder(dim=32)
    with make(tmp_path / "other", embedder) as target:
        report = import_(target, io.StringIO(text))
        assert report.imported == 4 and report.embedded == 4
        assert {r.embedding_model for r in records(target)} == {"hash-32"}


def _lines(source: Memory) -> list[str]:
    return dump(source).splitlines()


def test_bad_lines_are_named_and_nothing_is_imported(source: Memory, tmp_path: Path) -> None:
    lines = _lines(source)  # header + 4 records
    lines[2] = "{not json"
    bad_layer = json.loads(lines[4])
    bad_layer["layer"] = "attic"
    lines[4] = json.dumps(bad_layer)
    no_layer = json.loads(lines[1])
    del no_layer["layer"]
    lines.append(json.dumps(no_layer))
    with make(tmp_path / "other") as target:
        with pytest.raises(BackupError) as err:
            import_(target, io.StringIO("\n".join(lines)))
        assert "line 3: invalid JSON" in str(err.value)
        assert "line 5: unknown layer 'attic'" in str(err.value)
        assert "line 6: missing field layer" in str(err.value)
        assert target.backend.count() == 0
        report = import_(target, io.StringIO("\n".join(lines)), skip_bad=True)
        assert report.imported == 2
        assert [(b.line, b.error.split(" ")[0]) for b in report.skipped_bad] == [
            (3, "invalid"),
            (5, "unknown"),
            (6, "missing"),
        ]
        assert target.backend.count() == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"importance": 1.5}, "importance"),
        ({"tags": "infra"}, "tags"),
        ({"text": ""}, "text"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"content_hash": "0" * 64}, "content_hash"),
        ({"vector": "AAAA", "dim": 64}, "vector has 0 values"),
        ({"vector": "!!", "dim": 1}, "base64"),
        ({"created_at": 1e300}, "created_at must be unix seconds between the years 1 and 9999"),
        ({"created_at": -1e15}, "created_at must be unix seconds"),
        ({"created_at": 10**400}, "created_at must be a finite number"),
        ({"updated_at": 1e300}, "updated_at"),
        ({"layer_since": -1e15}, "layer_since"),
        ({"last_access_at": 1e300}, "last_access_at"),
        ({"importance": 10**30}, "importance"),
        ({"promotion_score": 10**400}, "promotion_score"),
        ({"access_count": 2**63}, "access_count must be a non-negative integer below 2"),
        ({"access_count": -1}, "access_count"),
        ({"access_count": 1.5}, "access_count"),
        ({"source": {"uri": "a.md", "start": 2**63}}, "start must be a non-negative integer"),
        ({"source": {"uri": "a.md", "line_end": -3}}, "line_end"),
        ({"source": {"uri": "a.md", "start": 9, "end": 2}}, "end must not be before start"),
        ({"source": {"uri": "a.md", "line_start": "1"}}, "line_start"),
        ({"text": "x" * 1_000_001}, "more than 1,000,000"),
        ({"tags": ["t" * 201]}, "each at most 200 characters"),
        ({"kind": "k" * 201}, "kind must be a non-empty string of at most 200"),
        ({"kind": "note\x1b[2J"}, r"kind 'note\\x1b\[2J' holds a control character \(U\+001B\)"),
        ({"tags": ["ok", "a\x00"]}, r"a tag 'a\\x00' holds a control character \(U\+0000\)"),
        ({"project": "p\n"}, r"project 'p\\n' holds a control character \(U\+000A\)"),
        ({"session": "s\x85"}, r"session 's\\x85' holds a control character \(U\+0085\)"),
        ({"tags": ["o\u202eps"]}, r"a tag 'o\\u202eps' holds a bidi or zero-width character"),
        ({"kind": "n\u200bote"}, r"kind 'n\\u200bote' holds a bidi or zero-width character"),
    ],
)
def test_each_invalid_field_is_reported(
    source: Memory, tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    row = json.loads(_lines(source)[1])
    row.update(change)
    with make(tmp_path / "other") as target, pytest.raises(BackupError, match=reason):
        import_(target, io.StringIO(json.dumps(row) + "\n"))


def test_minimal_hand_written_lines_get_defaults(tmp_path: Path) -> None:
    with make(tmp_path / "other") as target:
        report = import_(target, io.StringIO('{"text": "hello world", "layer": "assets"}\n'))
        assert report.imported == 1
        record = records(target)[0]
        assert record.layer is Layer.ASSETS and record.kind == "note" and record.importance == 0.5


def test_an_empty_input_is_refused_but_an_empty_stores_export_imports(tmp_path: Path) -> None:
    """An empty file (a failed download, the wrong file) said "imported 0 record(s)"."""
    from magray.errors import UsageError

    with make(tmp_path / "other") as target:
        for empty in ("", "\n\n  \n"):
            with pytest.raises(UsageError, match="the input is empty"):
                import_(target, io.StringIO(empty))
        with make(tmp_path / "empty") as nothing:
            assert import_(target, io.StringIO(dump(nothing))).imported == 0
        with pytest.raises(BackupError, match="the input is not JSON Lines"):
            import_(target, io.StringIO("not json\n"))


def test_long_and_deeply_nested_lines_are_bad_lines(tmp_path: Path) -> None:
    from magray.memory.transfer.jsonl import MAX_LINE_CHARS

    long_line = json.dumps({"text": "w" * (MAX_LINE_CHARS + 10), "layer": "assets"})
    lines = [long_line, "[" * 100_000, '{"text": "kept", "layer": "assets"}']
    with make(tmp_path / "other") as target:
        report = import_(target, io.StringIO("\n".join(lines) + "\n"), skip_bad=True)
        assert report.imported == 1
        assert [(b.line, b.error) for b in report.skipped_bad] == [
            (1, f"the line is longer than {MAX_LINE_CHARS:,} characters"),
            (2, "invalid JSON (nested too deeply)"),
        ]


def test_stored_values_no_magray_writes_do_not_break_reads(tmp_path: Path) -> None:
    with make(tmp_path / "other") as memory:
        memory.remember(NewRecord(text="odd row", source=Source("a.md", 0, 7, 1, 1)))
        with memory.backend.store.write() as conn:
            conn.execute(
                "UPDATE records SET created_at = 1e999, updated_at = 'soon', layer_since = -1e300,"
                " tags = '{bad', source_start = 'a', source_end = -4, promotion_score = 'p'"
            )
            conn.execute(
                "INSERT INTO record_stats (num, access_count, last_access_at)"
                " SELECT num, 'many', 'x' FROM records"
            )
        [record] = memory.list_records()
        assert (record.created_at, record.updated_at, record.access_count) == (0.0, 0.0, 0)
        assert record.tags == () and record.source == Source("a.md", None, None, 1, 1)
        assert memory.recall(Query(text="odd row", mode=SearchMode.KEYWORD))
        with memory.backend.store.write() as conn:
            conn.execute("UPDATE records SET created_at = 'soon'")
        for mode in SearchMode:
            assert memory.recall(Query(text="odd row", mode=mode, filters=Filters(kind="note")))


def test_a_file_that_is_not_json_lines_is_called_so(tmp_path: Path) -> None:
    """`memory import /etc/passwd` listed five parser errors per line instead of saying
    that the file is the wrong one."""
    text = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
    with make(tmp_path / "other") as target:
        with pytest.raises(BackupError) as err:
            import_(target, io.StringIO(text))
        assert err.value.message == (
            "the input is not JSON Lines (line 1: invalid JSON (Expecting value: line 1"
            " column 1 (char 0))), so nothing was imported; give the .jsonl file `magray"
            " memory export` wrote."
        )
        assert target.backend.count() == 0
