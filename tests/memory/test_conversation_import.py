"""Importing chat histories: the three formats, exchanges, incremental re-import, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import UsageError
from magray.memory.conversation.formats import read_turns
from magray.memory.conversation.importer import TURN_KIND, import_conversations
from magray.memory.records import Filters, Layer, Query, SearchMode
from magray.memory.service import Memory
from tests.fakes import HashEmbedder

FIXTURES = Path(__file__).parent / "fixtures"


def make() -> Memory:
    return Memory(load_settings(), embedder=HashEmbedder())


def test_chatgpt_follows_the_current_branch_and_skips_system_messages() -> None:
    turns = read_turns(FIXTURES / "chatgpt.json", "chatgpt")
    assert [(t.speaker, t.text) for t in turns] == [
        ("user", "I am flying to Lisbon on 12 May."),
        ("assistant", "Pack a light jacket for Lisbon evenings."),
        ("user", "Thanks, and book the tram tour."),
    ]
    assert {t.session for t in turns} == {"c-trip"}
    assert turns[0].at == 1683849600.0


def test_claude_reads_text_or_content_and_iso_times() -> None:
    turns = read_turns(FIXTURES / "claude.json", "claude")
    assert [t.speaker for t in turns] == ["human", "assistant"]
    assert turns[1].text == "Remove the infected leaves and water at the base."
    assert turns[0].at == 1719997200.0


def test_jsonl_chat_takes_numbers_iso_or_no_time() -> None:
    turns = read_turns(FIXTURES / "chat.jsonl", "jsonl-chat")
    assert [t.at for t in turns] == [1677780000.0, 1677780060.0, None]
    assert [t.session for t in turns] == ["s1", "s1", "s2"]


def test_turns_are_records_with_speaker_session_and_event_time() -> None:
    with make() as memory:
        report = import_conversations(memory, FIXTURES / "chat.jsonl", "jsonl-chat")
        assert (report.conversations, report.turns, report.added, report.unchanged) == (2, 3, 3, 0)
        records = memory.list_records(Filters(kind=TURN_KIND), limit=10)
        first = next(r for r in records if "greyhound" in r.text)
        assert first.text == "Ana: I adopted a greyhound called Pixel."
        assert first.session == "s1" and first.layer is Layer.ASSETS
        assert "speaker:Ana" in first.tags
        assert first.occurred_at == 1677780000.0 and first.created_at > first.occurred_at
        assert first.source is not None and first.source.uri == "jsonl-chat:s1"
        undated = next(r for r in records if "sit" in r.text)
        assert undated.occurred_at is None and undated.event_at == undated.created_at


def test_reimport_adds_nothing_and_leaves_records_untouched() -> None:
    with make() as memory:
        import_conversations(memory, FIXTURES / "chatgpt.json", "chatgpt")
        before = {r.id: r.access_count for r in memory.list_records(limit=50)}
        again = import_conversations(memory, FIXTURES / "chatgpt.json", "chatgpt")
        assert (again.added, again.unchanged) == (0, 3)
        after = {r.id: r.access_count for r in memory.list_records(limit=50)}
        assert after == before


def test_per_exchange_groups_a_question_with_its_answer() -> None:
    with make() as memory:
        report = import_conversations(memory, FIXTURES / "chatgpt.json", "chatgpt", per="exchange")
        assert report.added == 2
        texts = sorted(r.text for r in memory.list_records(limit=10))
        assert texts[0].startswith("user: I am flying to Lisbon")
        assert texts[0].endswith("assistant: Pack a light jacket for Lisbon evenings.")
        assert texts[1] == "user: Thanks, and book the tram tour."


def test_imported_turns_are_recalled_by_default_searches() -> None:
    with make() as memory:
        import_conversations(memory, FIXTURES / "claude.json", "claude")
        hits = memory.recall(
            Query(
                text="tomatoes blight",
                mode=SearchMode.KEYWORD,
                filters=Filters(exclude_kinds=("exchange", "agent_run")),
            )  # what ask and search leave out
        )
        assert hits and "blight" in hits[0].record.text


@pytest.mark.parametrize(
    ("fmt", "content", "expected"),
    [
        ("jsonl-chat", '{"session": "s", "speaker": "a"}\n', "line 1 has no text"),
        ("jsonl-chat", '{"session": "s", "speaker": "a", "text": "x"}\nnot json\n', "line 2"),
        ("jsonl-chat", '{"session": "s", "speaker": "a", "text": "x", "time": "soon"}\n', "time"),
        ("chatgpt", '[{"id": "c1", "title": "t"}]', "conversation 1 (c1) has no message mapping"),
        ("claude", '[{"uuid": "u1", "chat_messages": [{"text": "hi"}]}]', "without a sender"),
        ("claude", '{"not": "a list"}', "a JSON list of conversations"),
        ("xml", "[]", "unknown format"),
    ],
)
def test_bad_input_is_one_sentence_naming_where(
    tmp_path: Path, fmt: str, content: str, expected: str
) -> None:
    path = tmp_path / "in.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError) as err:
        read_turns(path, fmt)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_fixture_files_are_valid_json() -> None:
    for name in ("chatgpt.json", "claude.json"):
        assert isinstance(json.loads((FIXTURES / name).read_text()), list)


def test_a_turn_memory_refuses_names_its_conversation(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    path.write_text('{"session": "s9", "speaker": "a", "text": "nul \\u0000 byte"}\n')
    with (
        make() as memory,
        pytest.raises(UsageError, match="conversation s9: the text contains NUL"),
    ):
        import_conversations(memory, path, "jsonl-chat")
    with make() as memory:
        assert memory.list_records() == []
