"""The grounded ask turn with a scripted LLM seam and a real memory store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from magray.agent.conversations import ConversationLog
from magray.agent.session import EXCHANGE, Session, build_messages, citations
from magray.config import load_settings
from magray.errors import UsageError
from magray.llm.base import Capabilities, Chunk, Message, Request, Usage
from magray.memory.records import Filters, Layer, NewRecord
from magray.memory.service import Memory
from tests.fakes import HashEmbedder


@dataclass
class ScriptedProvider:
    answer: str = "The staging database listens on port 5433 [1]."
    window: int = 4096
    interrupt_after: int | None = None
    requests: list[Request] = field(default_factory=list)

    name: str = "scripted"
    model: str = "scripted-1"
    supports_tools: bool = False

    @property
    def context_window(self) -> int:
        return self.window

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) + 4 for m in messages)

    def stream(self, request: Request) -> Iterator[Chunk]:
        self.requests.append(request)
        words = self.answer.split(" ")
        for i, word in enumerate(words):
            if self.interrupt_after is not None and i == self.interrupt_after:
                raise KeyboardInterrupt
            yield Chunk(text=word if i == 0 else " " + word)
        yield Chunk(usage=Usage(42, len(words)), finish_reason="stop")


@dataclass
class SmallProvider(ScriptedProvider):
    """A provider that declares itself small, as the built-in local models do."""

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(context_window=self.window, small=True)


@dataclass
class AnswersProvider(SmallProvider):
    """A small provider that gives ``answers`` in turn, one per request (then the last)."""

    answers: list[str] = field(default_factory=list)

    def stream(self, request: Request) -> Iterator[Chunk]:
        if self.answers:
            self.answer = self.answers.pop(0)
        return super().stream(request)


class ScriptedLLM:
    def __init__(self, provider: ScriptedProvider) -> None:
        self._provider = provider

    def provider(self, name: str | None = None) -> ScriptedProvider:
        return self._provider

    def stream(self, request: Request, provider: str | None = None) -> Iterator[Chunk]:
        return self._provider.stream(request)


@pytest.fixture
def memory() -> Memory:
    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(NewRecord(text="The staging database listens on port 5433", layer=Layer.INSIGHTS))
    mem.remember(NewRecord(text="Lunch on Fridays is pizza", layer=Layer.ASSETS))
    return mem


@pytest.fixture
def log(magray_home: Path) -> ConversationLog:
    return ConversationLog(magray_home / "data" / "conversations.db")


def test_answer_is_grounded_cited_remembered_and_logged(
    memory: Memory, log: ConversationLog
) -> None:
    provider = ScriptedProvider()
    session = Session(ScriptedLLM(provider), memory, log)
    streamed: list[str] = []
    result = session.ask("which port does the staging database use?", on_text=streamed.append)
    system = provider.requests[0].messages[0].content
    assert "[1]" in system and "port 5433" in system
    assert "".join(streamed).strip() == result.answer
    assert result.cited == [result.memories[0].id]
    assert "5433" in result.memories[0].text
    assert result.usage.prompt_tokens == 42
    exchanges = memory.list_records(Filters(layers=(Layer.INTERACT,), kind="exchange"))
    assert exchanges[0].session == result.conversation_id
    assert exchanges[0].text.startswith("Q: which port")
    turns = log.turns(result.conversation_id)
    assert turns[0].memories == tuple(result.cited)


def test_continuing_a_conversation_sends_earlier_turns(
    memory: Memory, log: ConversationLog
) -> None:
    provider = ScriptedProvider()
    session = Session(ScriptedLLM(provider), memory, log)
    first = session.ask("which port does staging use?")
    assert log.last_conversation() == first.conversation_id
    second = session.ask("and production?", conversation_id=first.conversation_id)
    assert second.conversation_id == first.conversation_id
    roles = [m.role for m in provider.requests[1].messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert len(log.turns(first.conversation_id)) == 2


def test_no_memory_mode_neither_recalls_nor_stores(memory: Memory, log: ConversationLog) -> None:
    """``memory`` is this home's default store: where a session that stored would write."""
    exchanges = Filters(kind=EXCHANGE)
    provider = ScriptedProvider(answer="Plain answer.")
    result = Session(ScriptedLLM(provider), None, log).ask("anything?")
    assert result.memories == []
    assert "Memories:" not in provider.requests[0].messages[0].content
    assert memory.backend.count(exchanges) == 0
    # the same turn with the memory passed stores its exchange where the count looks
    with_memory = Session(ScriptedLLM(provider), memory, log).ask("anything?")
    assert with_memory.memories and memory.backend.count(exchanges) == 1


def test_ctrl_c_keeps_the_partial_answer(memory: Memory, log: ConversationLog) -> None:
    provider = ScriptedProvider(answer="one two three four five", interrupt_after=3)
    result = Session(ScriptedLLM(provider), memory, log).ask("count please")
    assert result.answer == "one two three"
    assert result.finish_reason == "interrupted"
    assert any("Ctrl-C" in n for n in result.notes)
    assert log.turns(result.conversation_id)[0].answer == "one two three"


def test_overflow_drops_memories_first_then_old_turns() -> None:
    from magray.agent.conversations import Turn
    from magray.agent.session import UsedMemory

    mems = [UsedMemory(f"m{i}", Layer.ASSETS, 1.0 - i / 10, "word " * 50, None) for i in range(5)]
    turns = [Turn("c", 0.0, "old q " * 20, "old a " * 20, "p", "m", 0, 0, 0.0, (), None)] * 3

    def count(messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    full = count(build_messages("q?", mems, turns, budget=10**6, count=count)[0])
    _, kept, kept_turns, notes = build_messages("q?", mems, turns, budget=full - 30, count=count)
    assert [m.id for m in kept] == ["m0", "m1", "m2", "m3"] and len(kept_turns) == 3
    assert "lowest-ranked" in notes[0]
    _, kept, kept_turns, notes = build_messages("q?", mems, turns, budget=150, count=count)
    assert kept == [] and len(kept_turns) < 3
    assert any("oldest conversation turns" in n for n in notes)
    with pytest.raises(UsageError, match="does not fit"):
        build_messages("long " * 500, [], [], budget=100, count=count)


def test_citations_map_numbers_to_ids() -> None:
    from magray.agent.session import UsedMemory

    mems = [UsedMemory(f"id{i}", Layer.ASSETS, 1.0, "t", None) for i in range(3)]
    assert citations("see [2] and [1], again [2]; not [9]", mems) == ["id1", "id0"]


def test_empty_question_is_a_usage_error(memory: Memory, log: ConversationLog) -> None:
    with pytest.raises(UsageError):
        Session(ScriptedLLM(ScriptedProvider()), memory, log).ask("   ")


def test_the_prompt_names_sources_briefly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from magray.agent.session import UsedMemory, memory_block, short_source

    monkeypatch.chdir(tmp_path)
    assert short_source(str(tmp_path / "docs" / "memory.md")) == "docs/memory.md"
    assert short_source("/elsewhere/home/user/notes/todo.md") == "notes/todo.md"
    assert short_source("https://example.com/a/b") == "https://example.com/a/b"
    assert short_source("notes.md") == "notes.md"
    block = memory_block(
        [UsedMemory("abc", Layer.ASSETS, 1.0, "Port 5433.", str(tmp_path / "ops.md"))]
    )
    assert block == "Memories:\n[1] (ops.md) Port 5433."


def test_a_small_model_reads_the_matching_sentences_greedily(log: ConversationLog) -> None:

    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(
        NewRecord(
            text="Lunch on Fridays is pizza. The staging database listens on port 5433. "
            + " ".join(f"Meeting room {i} has a whiteboard and plants." for i in range(60)),
            layer=Layer.INSIGHTS,
        )
    )
    small = SmallProvider()
    result = Session(ScriptedLLM(small), mem, log).ask("Which port does the staging database use?")
    system = small.requests[0].messages[0].content
    assert "[1]" in system and "port 5433" in system and "pizza" not in system
    assert small.requests[0].temperature is None  # a configured temperature still wins
    assert small.requests[0].default_temperature == 0.0
    assert result.cited == [result.memories[0].id]
    # a model that is not small reads the whole memory, at its provider's temperature
    large = ScriptedProvider()
    Session(ScriptedLLM(large), mem, log).ask("Which port does the staging database use?")
    assert "pizza" in large.requests[0].messages[0].content
    assert large.requests[0].temperature is None
    assert large.requests[0].default_temperature is None


def test_best_last_numbers_the_best_memory_next_to_the_question() -> None:
    from magray.agent.session import UsedMemory

    mems = [
        UsedMemory(f"m{i}", Layer.ASSETS, 1.0 - i / 10, f"fact {i} " * 20, None) for i in range(3)
    ]

    def count(messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    messages, shown, _, _ = build_messages(
        "q?", mems, [], budget=10**6, count=count, best_last=True
    )
    assert [m.id for m in shown] == ["m2", "m1", "m0"]
    system = messages[0].content
    assert system.index("[3] fact 0") > system.index("[1] fact 2")
    assert citations("It is so [3].", shown) == ["m0"]
    # an overflow still leaves out the lowest-ranked memory, not the best
    full = count(messages)
    _, shown, _, _ = build_messages("q?", mems, [], budget=full - 10, count=count, best_last=True)
    assert [m.id for m in shown] == ["m1", "m0"]


def test_a_small_models_citation_names_the_memory_that_holds_its_answer(
    log: ConversationLog,
) -> None:

    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(NewRecord(text="The staging database listens on port 5433.", layer=Layer.ASSETS))
    mem.remember(NewRecord(text="The staging database runs PostgreSQL 16.", layer=Layer.ASSETS))
    question = "Which port does the staging database listen on?"
    session = Session(ScriptedLLM(SmallProvider()), mem, log)
    shown = session.ask(question).memories
    holder = next(i for i, m in enumerate(shown, 1) if "5433" in m.text)
    other = 3 - holder
    small = SmallProvider(answer=f"The staging database listens on port 5433 [{other}].")
    result = Session(ScriptedLLM(small), mem, log).ask(question)
    assert result.answer == f"The staging database listens on port 5433 [{holder}]."
    assert result.cited == [shown[holder - 1].id]
    assert result.notes == [f"citation [{other}] → [{holder}]: that memory holds the answer"]
    # what was streamed is what was stored and logged, corrected citation included
    pieces: list[str] = []
    streamed = Session(ScriptedLLM(small), mem, log).ask(question, on_text=pieces.append)
    assert "".join(pieces) == streamed.answer == result.answer
    assert log.turns(streamed.conversation_id)[0].answer == streamed.answer
    # stopped by Ctrl-C: what was kept is what was shown
    pieces.clear()
    cut = SmallProvider(answer=small.answer, interrupt_after=4)
    stopped = Session(ScriptedLLM(cut), mem, log).ask(question, on_text=pieces.append)
    assert stopped.finish_reason == "interrupted" and "".join(pieces) == stopped.answer
    # a model that is not small keeps its own citations
    large = ScriptedProvider(answer=f"The staging database listens on port 5433 [{other}].")
    pieces.clear()
    kept = Session(ScriptedLLM(large), mem, log).ask(question, on_text=pieces.append)
    assert kept.answer.endswith(f"[{other}].") and "".join(pieces) == kept.answer


def test_unit_lines_put_each_unit_of_evidence_on_its_own_line() -> None:
    from magray.agent.session import UsedMemory, memory_block

    focused = [UsedMemory("m0", Layer.ASSETS, 1.0, "code: 4; meaning: denied … code: 3", None)]
    assert memory_block(focused, unit_lines=True) == (
        "Memories:\n[1]\n- code: 4; meaning: denied\n- code: 3"
    )
    assert memory_block(focused) == "Memories:\n[1] code: 4; meaning: denied … code: 3"


def test_a_small_model_that_only_restates_the_question_is_asked_for_the_value(
    log: ConversationLog,
) -> None:
    from magray.agent.session import RETRY_CUE, restates

    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(NewRecord(text="The staging database listens on port 5433.", layer=Layer.ASSETS))
    question = "Which port does the staging database listen on?"
    first = "According to [1], the staging database listens on a port."
    assert restates(first, question) and not restates("I don't know.", question)
    small = AnswersProvider(answers=[first, "Port 5433 [1]."])
    pieces: list[str] = []
    result = Session(ScriptedLLM(small), mem, log).ask(question, on_text=pieces.append)
    assert len(small.requests) == 2
    assert small.requests[1].messages[-1].content == f"{question}\n{RETRY_CUE}"
    assert small.requests[1].messages[0] == small.requests[0].messages[0]  # same memories
    assert result.answer == f"{first}\nPort 5433 [1]." == "".join(pieces)
    assert result.usage.prompt_tokens == 84 and "asked once more" in result.notes[0]
    assert log.turns(result.conversation_id)[0].answer == result.answer
    # a second answer that adds nothing the memories hold is dropped
    vague = AnswersProvider(answers=[first, "A number [1]."])
    pieces.clear()
    kept = Session(ScriptedLLM(vague), mem, log).ask(question, on_text=pieces.append)
    assert len(vague.requests) == 2 and kept.answer == first == "".join(pieces)
    assert kept.notes == []
    # an answer with a value of its own, a quoted name, or "I don't know" is not asked again
    for answer in (
        "The staging database listens on port 5433 [1].",
        "The `staging database` listens on a port [1].",
        "I don't know.",
    ):
        once = AnswersProvider(answer=answer)
        Session(ScriptedLLM(once), mem, log).ask(question)
        assert len(once.requests) == 1
    # a model that is not small is never asked again
    large = ScriptedProvider(answer=first)
    Session(ScriptedLLM(large), mem, log).ask(question)
    assert len(large.requests) == 1


def test_a_small_models_answer_the_memories_do_not_hold_is_i_dont_know(
    log: ConversationLog,
) -> None:
    from magray.agent.session import UNGROUNDED_NOTE

    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(NewRecord(text="The staging database listens on port 5433.", layer=Layer.ASSETS))
    question = "Which port does the staging database listen on?"
    for answer in (
        "The staging database listens on port 6543 [1]. Ask ops.",  # a made-up number
        "It listens wherever the cloud vendor decides [1].",  # nothing the memory holds
    ):
        pieces: list[str] = []
        small = SmallProvider(answer=answer)
        result = Session(ScriptedLLM(small), mem, log).ask(question, on_text=pieces.append)
        assert result.answer == "".join(pieces) == "I don't know.", answer
        assert result.notes == [UNGROUNDED_NOTE] and result.cited == []
        assert log.turns(result.conversation_id)[0].answer == "I don't know."
        assert len(small.requests) == 1  # "I don't know" is not asked again
    # a grounded answer stands; a model that is not small is never replaced
    held = "The staging database listens on port 5433 [1]."
    assert Session(ScriptedLLM(SmallProvider(answer=held)), mem, log).ask(question).answer == held
    made_up = "The staging database listens on port 6543 [1]."
    large = Session(ScriptedLLM(ScriptedProvider(answer=made_up)), mem, log).ask(question)
    assert large.answer == made_up


def test_a_small_model_reads_three_memories_the_best_next_to_the_question(
    log: ConversationLog,
) -> None:
    from magray.agent.session import SMALL_MEMORIES

    assert SMALL_MEMORIES == 3
    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    for text in (
        "The staging database runs PostgreSQL 16 on staging hosts.",
        "The staging database listens on port 5433.",
        "The staging cache listens on port 6380.",
        "The production database listens on port 5432.",
        "Staging is in Frankfurt.",
    ):
        mem.remember(NewRecord(text=text, layer=Layer.ASSETS))
    small = SmallProvider(answer="It listens on port 5433 [3].")
    result = Session(ScriptedLLM(small), mem, log).ask(
        "Which port does the staging database listen on?"
    )
    assert len(result.memories) == 3
    assert "5433" in result.memories[-1].text  # the best memory is numbered last …
    system = small.requests[0].messages[0].content
    assert system.rstrip().endswith("[3] The staging database listens on port 5433.")
    assert result.cited == [result.memories[-1].id]  # … and [3] cites it
    # a model that is not small reads the best memory first, and all six
    large = ScriptedProvider()
    wide = Session(ScriptedLLM(large), mem, log).ask("Which port does the staging database use?")
    assert len(wide.memories) == 5 and "[1] The staging database listens" in (
        large.requests[0].messages[0].content
    )


def test_a_small_models_value_from_a_neighbouring_unit_is_asked_again_from_the_best(
    log: ConversationLog,
) -> None:
    from magray.agent.session import FOCUS_NOTE

    mem = Memory(load_settings({"memory.auto_lifecycle": False}), embedder=HashEmbedder())
    mem.remember(
        NewRecord(
            text='magray ask "and then?" -c  # continue the last conversation\n\n'
            'echo "a question" | magray ask - --json',
            layer=Layer.ASSETS,
        )
    )
    question = "Which ask flag continues the last conversation?"
    wrong = "The ask flag `--json` continues the last conversation [1]."
    right = "The flag `-c` continues the last conversation [1]."
    small = AnswersProvider(answers=[wrong, right])
    pieces: list[str] = []
    result = Session(ScriptedLLM(small), mem, log).ask(question, on_text=pieces.append)
    assert len(small.requests) == 2
    second = small.requests[1].messages[0].content
    assert "continue the last conversation" in second and "--json" not in second
    assert result.answer == right == "".join(pieces)  # the first was never shown
    assert result.notes == [FOCUS_NOTE] and result.cited == [result.memories[0].id]
    assert log.turns(result.conversation_id)[0].answer == right
    # a second answer that is no better leaves the first, shown as it was
    pieces.clear()
    stuck = AnswersProvider(answers=[wrong, "I don't know."])
    kept = Session(ScriptedLLM(stuck), mem, log).ask(question, on_text=pieces.append)
    assert len(stuck.requests) == 2 and kept.answer == wrong == "".join(pieces)
    assert kept.notes == []
    # a value from the best unit is not asked again
    once = AnswersProvider(answers=[right])
    Session(ScriptedLLM(once), mem, log).ask(question)
    assert len(once.requests) == 1
    # stopped with Ctrl-C while held back: what the model said is kept and shown
    pieces.clear()
    stopped = AnswersProvider(answer=f"{wrong} It also prints JSON.", interrupt_after=10)
    cut = Session(ScriptedLLM(stopped), mem, log).ask(question, on_text=pieces.append)
    assert len(stopped.requests) == 1 and cut.finish_reason == "interrupted"
    assert cut.answer.startswith(wrong) and cut.answer == "".join(pieces)
