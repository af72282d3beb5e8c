"""Citations checked against the evidence: the cited memory must state the answer."""

from __future__ import annotations

from magray.agent.cite import best_source, fix_citations, new_terms

MEMORIES = [
    "key: `memory.lock_timeout`; default: `10.0`; meaning: Seconds to wait for the writer lock.",
    "`MAGRAY_MODELS_DIR` moves only the models, so several homes can share one copy.",
    "Settings are merged in this order: defaults < config.toml < environment < flags.",
]


def test_the_words_an_answer_adds_to_the_question() -> None:
    question = "Which environment variable moves only the models folder?"
    answer = "According to [3], `MAGRAY_MODELS_DIR` moves only the models folder."
    assert new_terms(answer, question) == {"magray_models_dir"}
    assert best_source(answer, question, MEMORIES) == 1


def test_a_citation_of_the_neighbouring_memory_is_replaced() -> None:
    question = "Which environment variable moves only the models folder?"
    answer = "According to [3], `MAGRAY_MODELS_DIR` moves only the models folder."
    assert fix_citations(answer, question, MEMORIES) == (
        "According to [2], `MAGRAY_MODELS_DIR` moves only the models folder."
    )
    # several wrong citations become one
    assert fix_citations("`MAGRAY_MODELS_DIR` [1][3].", question, MEMORIES) == (
        "`MAGRAY_MODELS_DIR` [2]."
    )


def test_a_right_citation_and_an_unknown_answer_stand() -> None:
    question = "How many seconds does MAGRAY wait for the writer lock?"
    right = "MAGRAY waits 10 seconds for the writer lock [1]."
    assert fix_citations(right, question, MEMORIES) == right
    assert fix_citations("I don't know.", question, MEMORIES) == "I don't know."
    # an answer that only restates the question names no memory: nothing to fix
    restated = "MAGRAY waits for the writer lock [3]."
    assert fix_citations(restated, question, MEMORIES) == restated


def test_an_uncited_answer_gets_the_memory_that_states_it() -> None:
    question = "How many seconds does MAGRAY wait for the writer lock?"
    assert fix_citations("It waits 10 seconds.", question, MEMORIES) == ("It waits 10 seconds [1].")
    assert fix_citations("10 seconds", question, MEMORIES) == "10 seconds [1]"


def test_a_tie_or_no_match_leaves_the_answer_as_it_is() -> None:
    question = "What is the capital of Australia?"
    answer = "The capital of Australia is Canberra [1]."
    assert fix_citations(answer, question, MEMORIES) == answer
    tied = ["The port is 5433.", "Staging listens on 5433."]
    assert best_source("It is 5433 [2].", "Which port?", tied) is None
