"""Focused evidence: recalled memories cut down to the units that match the question."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from magray.agent.evidence import focus, in_context, score_units, split_units, terms
from magray.agent.session import UsedMemory, citations
from magray.llm.base import Message
from magray.memory.records import Layer
from tests.fakes import HashEmbedder


def words(messages: Sequence[Message]) -> int:
    return sum(len(m.content.split()) + 4 for m in messages)


def mem(i: int, text: str, uri: str | None = None) -> UsedMemory:
    return UsedMemory(f"m{i}", Layer.ASSETS, 1.0 / i, text, uri)


EXIT_CODES = """## Exit codes

| code | meaning |
|---|---|
| 0 | success |
| 3 | not found: no such memory id, path or model |
| 4 | denied by policy |
"""

PROSE = (
    "The Interact layer keeps records for 24 hours by default. Insights keep theirs\n"
    "for 90 days. Assets are kept for good.\n\n"
    "- `magray memory expire` deletes records whose TTL has passed.\n"
    "- `magray memory verify` checks the store.\n"
)


def test_markdown_becomes_sentences_items_rows_and_code_lines() -> None:
    units = split_units(PROSE + "\n```bash\nmake test   # lint and tests\nmake run\n```\n")
    assert units[:3] == [
        "The Interact layer keeps records for 24 hours by default.",
        "Insights keep theirs for 90 days.",
        "Assets are kept for good.",
    ]
    assert units[3].startswith("- `magray memory expire` deletes")
    assert units[-2:] == ["make test   # lint and tests", "make run"]


def test_a_table_row_carries_its_column_names() -> None:
    units = split_units(EXIT_CODES)
    assert units[0] == "## Exit codes"
    assert "code: 3; meaning: not found: no such memory id, path or model" in units
    assert all("---" not in u for u in units)
    # a chunk that starts inside a table has no header: the row's cells alone
    assert split_units("| 4 | denied by policy |") == ["4; denied by policy"]


def test_a_short_label_before_a_colon_stays_with_its_value() -> None:
    text = (
        "- `Dockerfile`: CPU, `python:3.11-slim`, non-root user.\n"
        "- `Dockerfile.gpu`: the same on a CUDA base.\n\n"
        "Three settings decide where a store lives: `MAGRAY_HOME` moves everything.\n"
    )
    assert split_units(text) == [
        "- `Dockerfile`: CPU, `python:3.11-slim`, non-root user.",
        "- `Dockerfile.gpu`: the same on a CUDA base.",
        # a colon after a whole clause still ends a unit
        "Three settings decide where a store lives:",
        "`MAGRAY_HOME` moves everything.",
    ]


def test_terms_drop_stop_words_and_fold_plurals() -> None:
    assert terms("Which exit codes does MAGRAY use?") == ["exit", "code", "magray", "use"]


def test_the_matching_unit_is_kept_under_its_memory_number() -> None:
    memories = [
        mem(1, "Lunch on Fridays is pizza. The office closes at six."),
        mem(2, EXIT_CODES, "docs/configuration.md"),
        mem(3, PROSE),
    ]
    kept = focus("Which exit code means denied by policy?", memories, tokens=20, count=words)
    assert kept[0].id == "m2" and kept[0].uri == "docs/configuration.md"
    assert "denied by policy" in kept[0].text and "pizza" not in kept[0].text
    # a citation of [1] in the answer names the memory the unit came from
    assert citations("It is 4 [1].", kept) == ["m2"]


def test_units_within_the_token_budget_best_first() -> None:
    memories = [mem(1, PROSE), mem(2, EXIT_CODES)]
    question = "How many days does the Insights layer keep records?"
    base = words([Message("user", "")])
    for tokens in (12, 30, 45):
        kept = focus(question, memories, tokens=tokens, count=words, embedder=HashEmbedder())
        units = [u for m in kept for u in m.text.split(" … ")]
        # units, each counted on its own, stay within the budget
        assert sum(words([Message("user", u)]) - base for u in units) <= tokens
        assert kept[0].id == "m1" and "90 days" in kept[0].text
    # the best unit alone when only it fits; with room, more of the memory after it
    tight = focus(question, memories, tokens=12, count=words, embedder=HashEmbedder())
    assert [m.text for m in tight] == ["Insights keep theirs for 90 days."]
    roomy = focus(question, memories, tokens=30, count=words, embedder=HashEmbedder())
    assert roomy[0].text.startswith("Insights keep theirs for 90 days. … ")
    assert "24 hours" in roomy[0].text
    # or in the memory's own order
    ordered = focus(
        question, memories, tokens=30, count=words, embedder=HashEmbedder(), order="document"
    )
    assert ordered[0].text.index("24 hours") < ordered[0].text.index("90 days")
    # or best last, next to the question (as a small model reads them)
    last = focus(
        question, memories, tokens=30, count=words, embedder=HashEmbedder(), order="best_last"
    )
    assert last[0].text.endswith(" … Insights keep theirs for 90 days.")
    assert [m.id for m in last] == [m.id for m in roomy]  # memories still best first


def test_a_memory_without_a_kept_unit_is_left_out() -> None:
    memories = [mem(1, "The staging database listens on port 5433."), mem(2, "x " * 200)]
    kept = focus("Which port does staging listen on?", memories, tokens=12, count=words)
    assert [m.id for m in kept] == ["m1"]
    assert focus("anything", [], tokens=100, count=words) == []


def test_a_unit_carries_its_heading_and_list_lead_in_but_headings_are_not_units() -> None:
    text = "## Memory\n\nMAGRAY remembers in three layers:\n\n- Interact\n- Insights\n\nDone."
    units = in_context(split_units(text), memory=2)
    assert [u.text for u in units] == [
        "MAGRAY remembers in three layers:",
        "- Interact",
        "- Insights",
        "Done.",
    ]
    assert units[1].context == "Memory MAGRAY remembers in three layers:"
    assert units[3].context == "Memory"  # a lead-in reaches only its own list
    assert all(u.memory == 2 for u in units)


def test_a_heading_ranks_the_rows_under_it_above_a_bare_term_match() -> None:
    policy = "Policy rules are listed by the show command."
    units = in_context(split_units(EXIT_CODES + "\n" + policy))
    question = "Which exit code does MAGRAY use when policy denies something?"
    scores = dict(zip([u.text for u in units], score_units(question, units), strict=True))
    # the row shares "code" and "policy" with the question, the sentence only "policy";
    # its heading adds "exit" (at half weight)
    assert scores["code: 4; meaning: denied by policy"] > scores[policy]
    assert "## Exit codes" not in scores
    row = next(u for u in units if u.text.startswith("code: 4"))
    bare = replace(row, context="")
    with_heading, without = score_units(question, [row, bare])
    assert row.context == "Exit codes" and with_heading > without
    kept = focus(question, [mem(1, policy), mem(2, EXIT_CODES)], tokens=12, count=words)
    assert kept[0].id == "m2" and kept[0].text.startswith("code: 4")


def test_a_unit_holding_the_kind_of_value_asked_for_ranks_first() -> None:
    from magray.agent.evidence import asked_kinds

    assert asked_kinds("How many seconds may a call take?")
    assert asked_kinds("Which command lists the providers?")
    assert asked_kinds("Which environment variable moves the models?")
    assert asked_kinds("In which file is the log kept?")
    assert asked_kinds("Who wrote MAGRAY?") == []
    units = in_context(split_units("A tool call has a timeout. A tool call stops after 60."))
    first, second = score_units("How long may a tool call take?", units)
    # both name the subject; the one with a number wins once the question asks for one
    assert second > first
    assert score_units("Who wrote it?", units)[0] == score_units("Who wrote it?", units)[0]


def test_a_unit_repeated_by_overlapping_chunks_is_shown_once() -> None:
    row = "The staging database listens on port 5433."
    memories = [mem(1, f"{row} It is backed up nightly."), mem(2, f"Staging is slow. {row}")]
    kept = focus("Which port does staging listen on?", memories, tokens=40, count=words)
    shown = [u for m in kept for u in m.text.split(" … ")]
    assert shown.count(row) == 1


def test_terms_fold_verb_and_noun_endings_to_one_stem() -> None:
    assert set(terms("promotion promote promoted")) == {"promot"}
    assert set(terms("learned learning learn")) == {"learn"}
    assert set(terms("embedding embedder embeds")) == {"embed"}
    # names and numbers keep all but a plural's "s"; short words stay as they are
    assert terms("memory.ttl_hours 5433 f16 port") == ["memory.ttl_hour", "5433", "f16", "port"]
    assert terms("convex conversation") == ["convex", "convers"]


def test_a_long_unit_is_shown_as_the_clauses_that_match_the_question() -> None:
    from magray.agent.evidence import WINDOW_CHARS, window

    text = (
        "A record has: id (16 random base32 characters), text, layer, kind, tags, project, "
        "session, source (uri + character offsets + line range), created/updated times, "
        "access count, importance (0–1), pinned, promotion score, content hash (sha256 of the "
        "NFC text), embedding model id and its vector (a BLOB: float32 LE)"
    )
    start = window(text, set(terms("How many characters long is a record id?")))
    assert start.startswith("A record has: id (16 random") and start.endswith(" …")
    end = window(text, set(terms("Which hash is the content hash?")))
    assert end.startswith("… ") and "content hash (sha256 of the NFC text)" in end
    assert len(start) <= WINDOW_CHARS + 2 and len(end) <= WINDOW_CHARS + 2
    assert window("short text", {"short"}) == "short text"


def test_a_sentence_is_scored_with_the_sentence_before_it_in_its_paragraph() -> None:
    text = (
        "The file's scalar type is `memory.vector_dtype`. `f16` halves the index size.\n\n"
        "A PostgreSQL `halfvec` column halves the storage size of vectors."
    )
    units, before = split_units(text, before=True)
    assert units == [
        "The file's scalar type is `memory.vector_dtype`.",
        "`f16` halves the index size.",
        "A PostgreSQL `halfvec` column halves the storage size of vectors.",
    ]
    assert before == ["", units[0], ""]  # a new paragraph starts afresh
    assert split_units(text) == units
    question = "Which memory.vector_dtype value halves the vector index size?"
    with_prior = in_context(units, before=before)
    assert with_prior[1].context == units[0]
    scores = score_units(question, with_prior)
    bare = score_units(question, in_context(units))
    # alone, the f16 sentence matches no better than the halfvec one; with its subject it wins
    assert bare[1] <= bare[2] and scores[1] > scores[2]
    kept = focus(question, [mem(1, text)], tokens=10, count=words)
    assert kept[0].text.startswith("`f16` halves")
