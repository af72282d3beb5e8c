"""The anthropic provider against a local server speaking the messages API (SSE events)."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.errors import ProviderResponseError, ProviderUnavailableError, RateLimitError
from magray.llm.base import Message, Request, ToolCall

from .conftest import Reply, Scripted, an_stream
from .helpers import Clock, router


def toml(url: str, retries: int = 1) -> str:
    return (
        f'[llm]\ndefault = "claude"\n[llm.providers.claude]\ntype = "anthropic"\n'
        f'base_url = "{url}"\nmodel = "claude-test"\napi_key_env = "TEST_KEY"\n'
        f"timeout = 5\nmax_retries = {retries}\n"
    )


def test_stream_system_split_and_usage(server: Scripted, magray_home: Path) -> None:
    server.add(an_stream(["Bon", "jour"], prompt=21, completion=4))
    r = router(magray_home, toml(server.url))
    req = Request(
        messages=(Message("system", "be brief"), Message("user", "hello")),
        max_tokens=50,
        stop=("##",),
    )
    chunks = list(r.stream(req))
    assert "".join(c.text for c in chunks) == "Bonjour"
    last = chunks[-1]
    assert last.usage is not None and (last.usage.prompt_tokens, last.usage.completion_tokens) == (
        21,
        4,
    )
    assert last.finish_reason == "stop"
    sent = server.requests[0]
    assert sent["system"] == "be brief" and sent["max_tokens"] == 50
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
    assert sent["stop_sequences"] == ["##"]
    auth = server.headers[0].get("x-api-key") or server.headers[0].get("authorization", "")
    assert auth.endswith("sk-test-1234567890abcd")
    assert r.usage.spent(r.usage.totals("2000-01-01")[0].day)[0] == 25


def test_tool_use(server: Scripted, magray_home: Path) -> None:
    server.add(an_stream(["Let me look."], tool=("tu_1", "search", ['{"q":', ' "dogs"}'])))
    r = router(magray_home, toml(server.url))
    tools = (
        {
            "type": "function",
            "function": {"name": "search", "description": "find", "parameters": {"type": "object"}},
        },
    )
    history = (
        Message("user", "find dogs"),
        Message("assistant", "", tool_calls=(ToolCall("tu_0", "search", '{"q":1}'),)),
        Message("tool", "none", tool_call_id="tu_0"),
    )
    done = r.complete(Request(messages=history, tools=tools))
    assert done.tool_calls == (ToolCall("tu_1", "search", '{"q": "dogs"}'),)
    assert done.finish_reason == "tool_calls"
    sent = server.requests[0]
    assert sent["tools"] == [
        {"name": "search", "description": "find", "input_schema": {"type": "object"}}
    ]
    assert sent["messages"][1]["content"][0]["type"] == "tool_use"
    assert sent["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "tu_0",
        "content": "none",
    }


def test_429_retry_after_and_overload(server: Scripted, magray_home: Path) -> None:
    server.add(
        Reply(
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
            headers={"retry-after": "3"},
        ),
        an_stream(["ok"]),
    )
    clock = Clock()
    r = router(magray_home, toml(server.url), clock)
    assert r.complete(Request(messages=(Message("user", "x"),))).text == "ok"
    assert clock.slept == [3.0]
    server.add(
        *[Reply(529, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})]
        * 2
    )
    with pytest.raises(ProviderUnavailableError, match="overloaded"):
        r.complete(Request(messages=(Message("user", "x"),)))
    server.add(Reply(429, {}, headers={"retry-after": "9999"}))
    with pytest.raises(RateLimitError):
        r.complete(Request(messages=(Message("user", "x"),)))


def test_malformed_event(server: Scripted, magray_home: Path) -> None:
    server.add(Reply(events=["event: message_start\ndata: {oops\n\n"]))
    r = router(magray_home, toml(server.url))
    with pytest.raises(ProviderResponseError):
        r.complete(Request(messages=(Message("user", "x"),)))
