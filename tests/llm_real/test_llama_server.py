"""The real llama.cpp server on loopback, spoken to through the official openai SDK."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai", reason="openai is a core dependency")


def test_server_chat_stream_and_usage(llama_server_url: str) -> None:
    client = openai.OpenAI(base_url=llama_server_url, api_key="none", timeout=120)
    reply = client.chat.completions.create(
        model="gemma",
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    pieces = [
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="gemma",
            messages=[{"role": "user", "content": "Count to three."}],
            max_tokens=16,
            temperature=0,
            stream=True,
        )
        if chunk.choices
    ]
    assert "".join(pieces).strip()


def test_server_timeout_is_raised(llama_server_url: str) -> None:
    client = openai.OpenAI(base_url=llama_server_url, api_key="none", timeout=0.001, max_retries=0)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(
            model="gemma",
            messages=[{"role": "user", "content": "Write a long story."}],
            max_tokens=64,
        )
