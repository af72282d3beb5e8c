"""How requests reach a local model: a few-shot completion prompt for base models, chat
messages with worked examples for small chat models, and the prefix both share from call to
call (what the prompt cache keeps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from magray.llm.base import Message
from magray.llm.llama_loader import chat_formatters
from magray.llm.prompt_cache import common_prefix

STOPS = ("\nQuestion:", "\nNotes:", "\nUser:", "\n[", "\n\n\n")
CHAT_STOPS = ("<|im_end|>", "<|endoftext|>")

FEW_SHOT = """Questions answered from numbered notes, citing the note used.

Notes:
[1] The Eiffel Tower in Paris was completed in 1889 for the World's Fair.
[2] Bananas are rich in potassium.
Question: When was the Eiffel Tower finished?
Answer: It was completed in 1889, for the World's Fair [1].

Notes:
[1] Run `make test` to lint the project and run the test suite.
Question: How do I run the tests?
Answer: Run `make test`; it lints the code and runs the whole suite [1].
"""


def render_completion_prompt(messages: Sequence[Message]) -> str:
    """A few-shot completion prompt for base models: notes, earlier turns, the question."""
    system = "\n".join(m.content for m in messages if m.role == "system")
    notes = ""
    if "Memories:" in system:
        notes = system[system.index("Memories:") + len("Memories:") :].strip()
    parts = [FEW_SHOT, "", "Notes:", notes or "(none)"]
    turns = [m for m in messages if m.role in ("user", "assistant")]
    for m in turns:
        if m.role == "user":
            parts.append(f"Question: {' '.join(m.content.split())}")
        else:
            parts.append(f"Answer: {' '.join(m.content.split())}")
    parts.append("Answer:")
    return "\n".join(parts)


#: worked examples a small chat model reads before every grounded question (a stable
#: prefix: llama.cpp's prompt cache keeps it, so it costs the first call only)
CHAT_SHOTS: tuple[tuple[str, str], ...] = (
    (
        "Memories:\n[1] The Eiffel Tower in Paris was completed in 1889 for the World's Fair."
        "\n[2] Bananas are rich in potassium.\n\nQuestion: When was the Eiffel Tower finished?",
        "According to [1], it was completed in 1889, for the World's Fair.",
    ),
    (
        "Memories:\n[1] Run `make test` to lint the project and run the test suite.\n"
        "[2] The canteen serves three menus: vegetarian, fish and meat.\n\n"
        "Question: Who wrote the deploy script?",
        "I don't know.",
    ),
    (
        "Memories:\n[1] The deploy script lives in scripts/deploy.sh.\n[2] Bananas are rich in"
        " potassium.\n\nQuestion: What is the capital of Italy?",
        "I don't know.",
    ),
    (
        "Memories:\n[1] The office is open Monday to Friday.\n[2] The canteen serves three"
        " menus: vegetarian, fish and meat.\n\nQuestion: Which menus does the canteen have?",
        "According to [2], there are three: vegetarian, fish and meat.",
    ),
)


CHAT_CUE = "(Answer from the memories only, citing the one you use, or say I don't know.)"


def render_chat_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Chat messages for a small local model: rules, worked examples, then the question.

    A system message carrying ``Memories:`` (a grounded question) is split: its rules stay
    first (a stable prefix for the prompt cache), worked examples follow, and the memories
    move next to the question, where a small model heeds them. Others pass unchanged.
    """
    system = "\n".join(m.content for m in messages if m.role == "system")
    rest = [m for m in messages if m.role != "system"]
    if "Memories:" not in system or not rest or rest[-1].role != "user":
        return [{"role": m.role, "content": m.content} for m in messages]
    rules, notes = system.split("Memories:", 1)
    out = [{"role": "system", "content": rules.strip()}]
    for question, answer in CHAT_SHOTS:
        out.append({"role": "user", "content": f"{question}\n{CHAT_CUE}"})
        out.append({"role": "assistant", "content": answer})
    out += [{"role": m.role, "content": m.content} for m in rest[:-1]]
    question = f"Memories:\n{notes.strip()}\n\nQuestion: {rest[-1].content.strip()}\n{CHAT_CUE}"
    out.append({"role": "user", "content": question})
    return out


def stable_messages(chat: Sequence[Mapping[str, str]]) -> int:
    """How many leading messages of ``chat`` are the same from call to call: the system
    prompt, and the worked examples ``render_chat_messages`` adds after it (never all)."""
    n = 0
    while n < len(chat) and chat[n]["role"] == "system":
        n += 1
    for question, answer in CHAT_SHOTS:
        shot = [
            {"role": "user", "content": f"{question}\n{CHAT_CUE}"},
            {"role": "assistant", "content": answer},
        ]
        if [dict(m) for m in chat[n : n + 2]] != shot:
            break
        n += 2
    return n if n < len(chat) else 0


def _formatter(llm: Any, generation: bool) -> Any | None:
    """The chat formatter ``create_chat_completion`` uses for a GGUF's own template."""
    if getattr(llm, "chat_handler", None) is not None:
        return None
    if getattr(llm, "chat_format", None) != "chat_template.default":
        return None
    key = (id(llm), generation)
    if key not in chat_formatters:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            if token == -1:
                return ""
            return bytes(llm.detokenize([token], special=True)).decode("utf-8", "replace")

        chat_formatters[key] = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            eos_token=text(llm.token_eos()),
            bos_token=text(llm.token_bos()),
            add_generation_prompt=generation,
        )
    return chat_formatters[key]


def _chat_tokens(llm: Any, chat: Sequence[Mapping[str, str]], generation: bool) -> list[int]:
    """``chat`` as the tokens llama.cpp's chat path reads (empty: not known)."""
    formatter = _formatter(llm, generation)
    if formatter is None:
        return []
    result = formatter(messages=[dict(m) for m in chat])
    prompt = str(result.prompt).encode("utf-8")
    return list(llm.tokenize(prompt, add_bos=not result.added_special, special=True))


def stable_prefix(
    llm: Any, chat: Sequence[Mapping[str, str]] | None, prompt: str = ""
) -> list[int]:
    """The tokens a chat (or a few-shot ``prompt``) shares with every call like it."""
    if chat is not None:
        n = stable_messages(chat)
        if n == 0:
            return []
        prefix = _chat_tokens(llm, chat[:n], False)
        full = _chat_tokens(llm, chat, True)
    elif prompt.startswith(FEW_SHOT):
        prefix = list(llm.tokenize(FEW_SHOT.encode("utf-8"), add_bos=True, special=True))
        full = list(llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
    else:
        return []
    return full[: common_prefix(prefix, full)]
