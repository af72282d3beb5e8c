"""The embedded local provider answering for real with the packaged Gemma model."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import ModelNotInstalledError
from magray.llm.base import Message, Request
from magray.llm.config import ProviderConfig
from magray.llm.local import LocalProvider
from magray.llm.local_prompts import render_completion_prompt


@pytest.fixture(scope="module")
def provider(local_gguf: Path) -> LocalProvider:
    config = ProviderConfig(name="local", type="local", model_path=local_gguf, threads=1)
    return LocalProvider(config, load_settings())


def test_local_model_answers_streams_and_stops(provider: LocalProvider) -> None:
    request = Request(
        messages=(
            Message("system", "Memories:\n[1] The capital of France is Paris."),
            Message("user", "What is the capital of France?"),
        ),
        max_tokens=40,
        temperature=0.0,
    )
    chunks = list(provider.stream(request))
    text = "".join(c.text for c in chunks)
    assert "Paris" in text
    final = chunks[-1]
    assert final.usage is not None and final.usage.prompt_tokens > 50
    assert 0 < final.usage.completion_tokens <= 40
    assert final.finish_reason in {"stop", "length"}
    assert "\nQuestion:" not in text  # the stop sequences end the answer


def test_token_counting_and_context(provider: LocalProvider) -> None:
    short = provider.count_tokens([Message("user", "hi")])
    long = provider.count_tokens([Message("user", "hello there " * 50)])
    assert long > short > 0
    assert provider.context_window == 2048
    caps = provider.capabilities
    assert caps.small and not caps.chat_template and caps.json_schema  # read from the GGUF


def test_prompt_keeps_turns_and_notes() -> None:
    prompt = render_completion_prompt(
        [
            Message("system", "Be brief.\n\nMemories:\n[1] Note one."),
            Message("user", "first?"),
            Message("assistant", "first answer"),
            Message("user", "second?"),
        ]
    )
    assert prompt.endswith("Question: first?\nAnswer: first answer\nQuestion: second?\nAnswer:")
    assert "[1] Note one." in prompt


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    config = ProviderConfig(name="mine", type="local", model_path=tmp_path / "nope.gguf")
    with pytest.raises(ModelNotInstalledError, match=r"model_path of \[llm.providers.mine\]"):
        LocalProvider(config, load_settings())
