"""The local provider's saved prompt prefixes, with the real test models.

Reuse is proven by what llama.cpp evaluated (its prompt-token counter) and by where the
prefix came from, never by timing. A "fresh process" is a model loaded again: its context
starts empty, like a new ``magray run``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import llama_cpp
import pytest

from magray.agent.session import GROUNDED_PROMPT
from magray.config import load_settings
from magray.llm import llama_loader, local_prompts
from magray.llm.base import Message, Request
from magray.llm.config import ProviderConfig
from magray.llm.local import LocalProvider
from magray.llm.local_prompts import stable_prefix
from magray.llm.prompt_cache import MAGIC, PromptCache

MEMORIES = "\n\nMemories:\n[1] The staging database listens on port 5433.\n[2] Run `make test`."
ASK = (Message("system", GROUNDED_PROMPT + MEMORIES), Message("user", "Which port has staging?"))
PLAN = (
    Message("system", "You are a planner. Tools:\n" + "\n".join(f"- tool{i}" for i in range(40))),
    Message("user", "List the files."),
)


def fresh(path: Path, **options: int) -> LocalProvider:
    """A provider whose model is loaded anew: an empty context, as in a new process."""
    llama_loader._close_models()
    config = ProviderConfig(name="local", type="local", model_path=path, threads=2, **options)
    return LocalProvider(config, load_settings())


def evaluated(provider: LocalProvider) -> int:
    """Prompt tokens llama.cpp has evaluated in this model's context so far."""
    return int(llama_cpp.llama_perf_context(provider.llm.ctx).n_p_eval)


def answer(provider: LocalProvider, messages: tuple[Message, ...]) -> str:
    request = Request(messages, temperature=0.0, max_tokens=8)
    return "".join(c.text for c in provider.stream(request))


def cache_files(home: Path) -> list[Path]:
    return sorted((home / "data" / "prompt-cache").glob("*.prefix"))


def test_a_saved_prefix_is_loaded_by_a_fresh_model(qwen_gguf: Path, magray_home: Path) -> None:
    cold = fresh(qwen_gguf)
    first = answer(cold, ASK)
    assert cold.last_prefix.source == "built"
    prefix = cold.last_prefix.tokens
    prompt = evaluated(cold)  # the whole prompt: nothing was cached
    assert prefix > 300 and prompt > prefix
    # the prefix rendered for the cache is what llama.cpp's chat path really read
    chat = local_prompts.render_chat_messages(ASK)
    assert list(cold.llm.input_ids[:prefix]) == stable_prefix(cold.llm, chat)
    assert len(cache_files(magray_home)) == 1

    warm = fresh(qwen_gguf)
    assert answer(warm, ASK) == first
    assert warm.last_prefix.source == "disk" and warm.last_prefix.tokens == prefix
    assert evaluated(warm) <= prompt - prefix + 1  # only what follows the prefix

    # the same process, another question: the prefix is still in the context
    answer(warm, (ASK[0], Message("user", "How do I run the tests?")))
    assert warm.last_prefix.source == "memory"


def test_the_planner_system_prompt_is_saved_too(qwen_gguf: Path, magray_home: Path) -> None:
    cold = fresh(qwen_gguf)
    answer(cold, PLAN)
    assert cold.last_prefix.source == "built"
    warm = fresh(qwen_gguf)
    answer(warm, (PLAN[0], Message("user", "Delete notes.txt.")))
    assert warm.last_prefix.source == "disk"
    assert evaluated(warm) < cold.last_prefix.tokens


def test_a_corrupt_file_is_ignored_and_rebuilt(
    local_gguf: Path, magray_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cold = fresh(local_gguf)
    first = answer(cold, ASK)
    assert cold.last_prefix.source == "built"
    (saved,) = cache_files(magray_home)
    blob = bytearray(saved.read_bytes())
    blob[-100] ^= 0xFF  # one flipped byte in the saved state
    saved.write_bytes(bytes(blob))

    with caplog.at_level(logging.WARNING, logger="magray"):
        again = fresh(local_gguf)
        assert answer(again, ASK) == first
    assert again.last_prefix.source == "built"
    notes = [r.getMessage() for r in caplog.records if "prompt cache" in r.getMessage()]
    assert len(notes) == 1 and "checksum" in notes[0]
    assert "\n" not in notes[0]

    saved.write_bytes(b"not a prefix")  # not even a header: ignored the same way
    with caplog.at_level(logging.WARNING, logger="magray"):
        assert answer(fresh(local_gguf), ASK) == first
    third = fresh(local_gguf)  # the rebuilt file is good
    answer(third, ASK)
    assert third.last_prefix.source == "disk"
    assert saved.read_bytes().startswith(MAGIC)


def test_another_model_or_prompt_does_not_reuse_it(
    local_gguf: Path, qwen_gguf: Path, magray_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    answer(fresh(local_gguf), ASK)
    (tiny_file,) = cache_files(magray_home)

    other_model = fresh(qwen_gguf)
    answer(other_model, ASK)
    assert other_model.last_prefix.source == "built"
    (qwen_file,) = set(cache_files(magray_home)) - {tiny_file}
    # the same model, another system prompt (a planner's): its own prefix
    answer(other_model, PLAN)
    assert other_model.last_prefix.source == "built"
    assert len(cache_files(magray_home)) == 3

    tiny = fresh(local_gguf)
    answer(tiny, ASK)
    assert tiny.last_prefix.source == "disk"
    # a context of another size is another key
    wider = fresh(local_gguf, n_ctx=3072)
    answer(wider, ASK)
    assert wider.last_prefix.source == "built"

    # a whole, valid file of the other model under this one's name is refused
    qwen_file.write_bytes(tiny_file.read_bytes())
    with caplog.at_level(logging.WARNING, logger="magray"):
        again = fresh(qwen_gguf)
        answer(again, ASK)
    assert again.last_prefix.source == "built"
    assert any("another model, prompt" in r.getMessage() for r in caplog.records)


def test_the_folder_stays_under_its_limit(local_gguf: Path, tmp_path: Path) -> None:
    provider = fresh(local_gguf)
    llm = provider.llm
    prefix_a = stable_prefix(llm, None, local_prompts.render_completion_prompt(ASK))
    assert prefix_a
    roomy = PromptCache(tmp_path / "a", local_gguf, 64 << 20)
    assert roomy.prime(llm, prefix_a).source == "built"
    size = next((tmp_path / "a").iterdir()).stat().st_size

    cache = PromptCache(tmp_path / "b", local_gguf, size + size // 2)  # room for one
    llm.reset()
    assert cache.prime(llm, prefix_a).source == "built"
    longer = prefix_a + list(llm.tokenize(b" and one more line of notes", add_bos=False))
    llm.reset()
    assert cache.prime(llm, longer).source == "built"
    (kept,) = (tmp_path / "b").iterdir()  # the older file went
    llm.reset()
    assert cache.prime(llm, longer).source == "disk"
    assert kept.exists()

    too_small = PromptCache(tmp_path / "c", local_gguf, size // 2)
    llm.reset()
    assert too_small.prime(llm, prefix_a).source == "built"
    assert not list((tmp_path / "c").glob("*.prefix"))  # never more than the limit


def test_off_when_the_limit_is_zero(local_gguf: Path, magray_home: Path) -> None:
    provider = fresh(local_gguf, prompt_cache_mb=0)
    answer(provider, ASK)
    assert provider.last_prefix.source == "none"
    assert not cache_files(magray_home)
