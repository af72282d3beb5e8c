"""The openai provider against a local server speaking chat completions (JSON and SSE)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from magray.errors import (
    ProviderResponseError,
    ProviderUnavailableError,
    RateLimitError,
    UnknownProviderError,
)
from magray.llm.base import Message, ToolCall

from .conftest import Reply, Scripted, oa_stream
from .helpers import ask, openai_toml, router


def test_stream_text_usage_and_request_shape(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["Hel", "lo", "!"], usage=(12, 3)))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    chunks = list(r.stream(ask("hello", max_tokens=20, temperature=0.1, stop=("##",))))
    assert "".join(c.text for c in chunks) == "Hello!"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12
    assert chunks[-1].finish_reason == "stop"
    sent = server.requests[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "gpt-test" and sent["max_tokens"] == 20 and sent["stop"] == ["##"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}
    assert server.headers[0]["authorization"] == "Bearer sk-test-1234567890abcd"
    rows = r.usage.totals("2000-01-01")
    assert [(x.provider, x.model, x.prompt_tokens, x.completion_tokens) for x in rows] == [
        ("oa", "gpt-test", 12, 3)
    ]


def test_no_usage_from_server_is_estimated(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["abcd" * 5], usage=None))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    done = r.complete(ask())
    assert done.text == "abcd" * 5 and done.usage.completion_tokens == 5
    assert done.usage.prompt_tokens > 0 and done.provider == "oa"


def test_streamed_tool_calls_are_accumulated(server: Scripted, magray_home: Path) -> None:
    deltas = [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "search", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": '{"q": '}},
        {"index": 0, "function": {"arguments": '"cats"}'}},
    ]
    server.add(oa_stream([], tool_calls=deltas))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    tools = ({"type": "function", "function": {"name": "search", "parameters": {}}},)
    history = (
        Message("assistant", "", tool_calls=(ToolCall("c0", "x", "{}"),)),
        Message("tool", "ok", tool_call_id="c0"),
    )
    done = r.complete(ask(tools=tools, messages=(*ask().messages, *history)))
    assert done.tool_calls == (ToolCall("call_1", "search", '{"q": "cats"}'),)
    assert done.finish_reason == "tool_calls"
    sent = server.requests[0]
    assert sent["tools"] == list(tools)
    assert sent["messages"][-2]["tool_calls"][0]["function"]["name"] == "x"
    assert sent["messages"][-1] == {"role": "tool", "content": "ok", "tool_call_id": "c0"}


def test_rate_limit_retry_after_is_honoured(server: Scripted, magray_home: Path) -> None:
    server.add(
        Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "7"}),
        oa_stream(["ok"]),
    )
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    assert r.complete(ask()).text == "ok"
    assert r._sleep.__self__.slept == [7.0]  # type: ignore[attr-defined]


def test_unavailable_retry_after_is_honoured_on_503(server: Scripted, magray_home: Path) -> None:
    server.add(
        Reply(503, {"error": {"message": "warming up"}}, headers={"Retry-After": "9"}),
        oa_stream(["ok"]),
    )
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    assert r.complete(ask()).text == "ok"
    assert r._sleep.__self__.slept == [9.0]  # type: ignore[attr-defined]


def test_rate_limit_http_date_and_give_up(server: Scripted, magray_home: Path) -> None:
    server.add(*[Reply(429, {"error": "busy"}, headers={"Retry-After": "2"})] * 3)
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    with pytest.raises(RateLimitError) as info:
        r.complete(ask())
    assert info.value.retry_after == 2.0 and len(server.requests) == 3


def test_timeout_names_the_url(server: Scripted, magray_home: Path) -> None:
    server.add(Reply(delay=3, body={}))
    toml = openai_toml(server.url).replace("timeout = 5", "timeout = 0.5")
    toml = toml.replace("max_retries = 2", "max_retries = 0")
    r = router(magray_home, toml + '[llm]\ndefault = "oa"\n')
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError, match=r"127\.0\.0\.1") as info:
        r.complete(ask())
    assert time.monotonic() - started < 2.5
    assert "0.5 s" in str(info.value)


def test_unreachable_base_url(magray_home: Path) -> None:
    toml = openai_toml("http://127.0.0.1:9").replace("max_retries = 2", "max_retries = 0")
    r = router(magray_home, toml + '[llm]\ndefault = "oa"\n')
    with pytest.raises(ProviderUnavailableError, match=r"127\.0\.0\.1:9/v1 cannot be reached"):
        r.complete(ask())


def test_malformed_json_is_a_response_error(server: Scripted, magray_home: Path) -> None:
    server.add(Reply(events=["data: {not json\n\n", "data: [DONE]\n\n"]))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    with pytest.raises(ProviderResponseError, match="malformed"):
        r.complete(ask())
    assert len(server.requests) == 1  # not retried


def test_key_rejected_and_unknown_model(server: Scripted, magray_home: Path) -> None:
    server.add(Reply(401, {"error": {"message": "bad key sk-test-1234567890abcd"}}))
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    with pytest.raises(ProviderResponseError, match="magray keys set oa") as info:
        r.complete(ask())
    assert "sk-test-1234567890abcd" not in str(info.value)
    server.add(Reply(404, {"error": {"message": "model nope not found"}}))
    with pytest.raises(UnknownProviderError, match="available: gpt-test, other-model"):
        r.complete(ask(model="nope"))


def test_server_without_stream_options(server: Scripted, magray_home: Path) -> None:
    server.add(
        Reply(400, {"error": {"message": "unknown field stream_options"}}),
        oa_stream(["fine"], usage=None),
    )
    r = router(magray_home, openai_toml(server.url) + '[llm]\ndefault = "oa"\n')
    assert r.complete(ask()).text == "fine"
    assert "stream_options" not in server.requests[1]


def test_keyless_local_server(server: Scripted, magray_home: Path) -> None:
    server.add(oa_stream(["hi"]))
    toml = (
        f'[llm]\ndefault = "ollama"\n[llm.providers.ollama]\ntype = "openai"\n'
        f'base_url = "{server.url}/v1"\nmodel = "llama3"\n'
    )
    r = router(magray_home, toml, env={})
    assert r.complete(ask()).text == "hi"
    assert json.dumps(server.requests[0]["model"]) == '"llama3"'
