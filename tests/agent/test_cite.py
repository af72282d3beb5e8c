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


def streamed(answer: str, question: str, size: int, texts: list[str] | None = MEMORIES) -> str:
    """``answer`` fed in pieces of ``size`` characters: what was passed on, checked equal to
    what the stream returns as the stored answer."""
    from magray.agent.cite import CheckedStream

    shown: list[str] = []
    stream = CheckedStream(question, texts, shown.append)
    for i in range(0, len(answer), size):
        stream.feed(answer[i : i + size])
    stored = stream.close()
    assert "".join(shown) == stored  # what the user saw is what is stored
    return stored


ANSWERS = [
    # (question, answer as the model streams it)
    (
        "Which environment variable moves only the models folder?",
        " According to [3], `MAGRAY_MODELS_DIR` moves only the models folder.",
    ),
    ("Which environment variable moves only the models folder?", "`MAGRAY_MODELS_DIR` [1][3]."),
    (
        "How many seconds does MAGRAY wait for the writer lock?",
        "MAGRAY waits 10 seconds for the writer lock [1].\n",
    ),
    ("How many seconds does MAGRAY wait for the writer lock?", "I don't know."),
    ("In which order are settings merged?", "Defaults, then config.toml, environment, flags."),
    ("In which order are settings merged?", "Defaults < config.toml < environment < flags"),
    ("What is it?", "   "),
    ("Which variable?", "See [7], `MAGRAY_MODELS_DIR`."),
]


def test_a_streamed_answer_is_the_checked_answer_in_every_piece_size() -> None:
    for question, answer in ANSWERS:
        for size in (1, 2, 3, 5, 8, 1000):
            # one sentence: the same check as on the whole answer
            assert streamed(answer, question, size) == fix_citations(
                answer.strip(), question, MEMORIES
            ), (answer, size)
            # without memories to check against: the answer, stripped
            assert streamed(answer, question, size, None) == answer.strip()


def test_text_before_a_marker_streams_before_the_sentence_ends() -> None:
    from magray.agent.cite import CheckedStream

    shown: list[str] = []
    stream = CheckedStream(
        "Which environment variable moves only the models folder?", MEMORIES, shown.append
    )
    for piece in [" According", " to", " [", "3", "],", " `MAGRAY_MODELS_DIR`", " moves"]:
        stream.feed(piece)
    assert "".join(shown) == "According to"  # the marker waits for its sentence
    stream.feed(" only the models folder. Then")
    # the sentence ended: checked, corrected and shown; what follows streams on
    assert "".join(shown) == (
        "According to [2], `MAGRAY_MODELS_DIR` moves only the models folder. Then"
    )
    stream.feed(" it stops [3] here")
    assert stream.close() == "".join(shown)
    assert "".join(shown).endswith("Then it stops here")  # a replaced citation removes the rest


def test_an_uncited_answer_holds_back_only_its_closing_punctuation() -> None:
    from magray.agent.cite import CheckedStream

    shown: list[str] = []
    question = "Which environment variable moves only the models folder?"
    stream = CheckedStream(question, MEMORIES, shown.append)
    stream.feed("It is `MAGRAY_MODELS_DIR`.")
    assert "".join(shown) == "It is `MAGRAY_MODELS_DIR`"
    assert stream.close() == "It is `MAGRAY_MODELS_DIR` [2]."
    assert "".join(shown) == "It is `MAGRAY_MODELS_DIR` [2]."


def test_an_answer_is_grounded_when_the_memories_hold_what_it_adds() -> None:
    from magray.agent.cite import grounded

    question = "How many seconds does MAGRAY wait for the writer lock?"
    assert grounded("MAGRAY waits 10 seconds for the writer lock [1].", question, MEMORIES)
    assert grounded("I don't know.", question, MEMORIES)
    # "I don't know" beside a made-up answer does not let it through
    assert not grounded("I don't know, but likely 30 seconds.", question, MEMORIES)
    assert grounded("It waits for the writer lock.", question, MEMORIES)  # adds nothing
    # a number the memories do not hold is made up, even beside words they hold
    assert not grounded("MAGRAY waits 30 seconds for the writer lock [1].", question, MEMORIES)
    # a number held beside one that is not: the value is there, the rest is judged lenient
    assert grounded("10 seconds, then 30 more [1].", question, MEMORIES)
    # a command quoted from a memory, whose words are all the question's, plus chatter
    make = "Which make target lints MAGRAY and runs its test suite?"
    memory = ["`make test` lints MAGRAY and runs the tests."]
    assert grounded("`make test` (it lints the code and runs the whole suite)", make, memory)
    assert not grounded("`make check` (it lints the code and runs the whole suite)", make, memory)
    # general knowledge: nothing it adds is in the memories
    capital = "What is the capital of Australia?"
    assert not grounded("The capital of Australia is Canberra [1].", capital, MEMORIES)
    assert not grounded("Canberra.", capital, [])


def test_numbers_and_units_are_read_alike_however_they_are_written() -> None:
    from magray.agent.cite import grounded

    question = "How often at most is the promotion model retrained?"
    memory = ["The promotion model is retrained at most every 6 h, on 20,000 records."]
    for answer in (
        "At most every six hours [1].",
        "Every 6 hours.",
        "Every 6h, on 20000 records.",
        "Every 6.0 h [1].",
    ):
        assert grounded(answer, question, memory), answer
    assert not grounded("Every seven hours [1].", question, memory)
    assert grounded("Every 6 h [1].", question, ["It is retrained every six hours."])


def test_an_ungrounded_answer_streams_as_i_dont_know_in_every_piece_size() -> None:
    from magray.agent.cite import UNKNOWN_ANSWER, CheckedStream

    capital = "What is the capital of Australia?"
    for answer, question, expected in (
        ("The capital of Australia is Canberra [1]. It is", capital, UNKNOWN_ANSWER),
        (" Canberra", capital, UNKNOWN_ANSWER),
        (  # judged on its first sentence that adds a word: held in [1]
            "According to [3]:\nMAGRAY waits 10 seconds. Then 99 more [1].",
            "How many seconds does MAGRAY wait for the writer lock?",
            "According to [3]:\nMAGRAY waits 10 seconds. Then 99 more [1].",
        ),
    ):
        for size in (1, 2, 3, 5, 8, 1000):
            shown: list[str] = []
            stream = CheckedStream(question, MEMORIES, shown.append, ground=True)
            for i in range(0, len(answer), size):
                stream.feed(answer[i : i + size])
            assert stream.close() == "".join(shown) == expected, (answer, size)
            assert (stream.replaced is not None) == (expected == UNKNOWN_ANSWER)


def test_the_first_sentence_is_held_until_it_is_judged() -> None:
    from magray.agent.cite import CheckedStream

    shown: list[str] = []
    question = "How many seconds does MAGRAY wait for the writer lock?"
    stream = CheckedStream(question, MEMORIES, shown.append, ground=True)
    stream.feed("MAGRAY waits 10 seconds")
    assert shown == []  # not judged yet: nothing shown
    stream.feed(" for the writer lock [1]. It")
    assert "".join(shown) == "MAGRAY waits 10 seconds for the writer lock [1]. It"
    # a later sentence is not judged again
    stream.feed(" is 99 minutes.")
    assert stream.close() == "".join(shown)
    assert stream.replaced is None


def test_a_value_read_off_a_neighbouring_unit_is_off_focus() -> None:
    from magray.agent.cite import in_focus, off_focus

    texts = [
        'magray ask "and then?" -c # continue the last conversation'
        ' … echo "a question" | magray ask - --json'
    ]
    question = "Which ask flag continues the last conversation?"
    assert off_focus("The ask flag `--json` continues the last conversation [1].", question, texts)
    assert not off_focus("The flag `-c` continues the last conversation [1].", question, texts)
    assert not off_focus("I don't know.", question, texts)
    assert not off_focus("Use `--resume` [1].", question, texts)  # no unit holds it
    assert in_focus(question, texts) == [
        'magray ask "and then?" -c # continue the last conversation'
    ]
