"""POST /v1/ask: JSON like `ask --json`, or server-sent events in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.llm.conftest import Reply, Scripted, oa_stream
from tests.server.conftest import AppFactory
from tests.server.llm_servers import provider_toml


@pytest.fixture
def llm(server: Scripted, magray_home: Path, monkeypatch: pytest.MonkeyPatch) -> Scripted:
    (magray_home / "config.toml").write_text(provider_toml(server.url), encoding="utf-8")
    monkeypatch.setenv("TEST_KEY", "sk-test-1234567890abcd")
    return server


def parse_sse(text: str) -> list[tuple[str, dict[str, Any], str]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            fields[name] = value
        events.append((fields["event"], json.loads(fields["data"]), fields["id"]))
    return events


def test_ask_json_is_the_cli_shape(llm: Scripted, make_client: AppFactory, key: Any) -> None:
    llm.add(oa_stream(["Port 5433."]))
    client = make_client()
    h = key("writer")
    client.post("/v1/memories", json={"text": "staging DB port is 5433"}, headers=h)
    r = client.post("/v1/ask", json={"question": "which port?"}, headers=h)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["answer"] == "Port 5433." and data["provider"] == "oa"
    assert set(data) >= {"conversation_id", "memories", "usage", "latency_ms", "cited"}
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 3}
    assert data["memories"] and data["memories"][0]["layer"] == "interact"


def test_ask_streams_events_in_order(llm: Scripted, make_client: AppFactory, key: Any) -> None:
    pieces = ["One ", "two ", "three ", "four."]
    llm.add(oa_stream(pieces))
    client = make_client()
    r = client.post(
        "/v1/ask",
        json={"question": "count", "no_memory": True},
        headers={**key("writer"), "accept": "text/event-stream"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(r.text)
    names = [e[0] for e in events]
    assert names == ["delta"] * 4 + ["result"]
    # a piece's trailing space travels with the next piece: the deltas add up to the
    # stored answer, which has no trailing whitespace
    assert [e[1]["text"] for e in events[:4]] == ["One", " two", " three", " four."]
    assert [e[2] for e in events] == ["1", "2", "3", "4", "5"]
    assert events[-1][1]["answer"] == "One two three four."


def test_provider_failure_is_an_error_event_or_problem(
    llm: Scripted, make_client: AppFactory, key: Any
) -> None:
    llm.add(Reply(400, {"error": {"message": "bad request", "type": "invalid"}}))
    llm.add(Reply(400, {"error": {"message": "bad request", "type": "invalid"}}))
    client = make_client()
    h = key("writer")
    r = client.post("/v1/ask", json={"question": "x", "no_memory": True}, headers=h)
    assert r.status_code == 502 and r.json()["type"] == "/problems/provider-error"
    streamed = client.post(
        "/v1/ask",
        json={"question": "x", "no_memory": True},
        headers={**h, "accept": "text/event-stream"},
    )
    events = parse_sse(streamed.text)
    assert [e[0] for e in events] == ["error"] and events[0][1]["status"] == 502


def test_unknown_conversation_is_404(llm: Scripted, make_client: AppFactory, key: Any) -> None:
    client = make_client()
    r = client.post(
        "/v1/ask", json={"question": "x", "conversation": "nope"}, headers=key("writer")
    )
    detail = r.json()["detail"]
    assert r.status_code == 404 and "nope" in detail
    assert "leave conversation out to start one" in detail  # what to do next


def test_tokens_are_counted(llm: Scripted, make_client: AppFactory, key: Any) -> None:
    llm.add(oa_stream(["ok"], usage=(11, 4)))
    client = make_client()
    client.post("/v1/ask", json={"question": "x", "no_memory": True}, headers=key("writer"))
    text = client.get("/metrics", headers=key("admin")).text
    assert 'magray_llm_tokens_total{kind="prompt",provider="oa"} 11.0' in text
    assert 'magray_llm_tokens_total{kind="completion",provider="oa"} 4.0' in text


def declare_small(magray_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured OpenAI-compatible provider (the loopback server) is a small model."""
    import dataclasses

    from magray.llm import registry
    from magray.llm.base import capabilities_of

    class SmallOpenAI:
        def __init__(self, config: Any, settings: Any, keys: Any, env: Any) -> None:
            self._inner = registry.build_openai(config, settings, keys, env)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        @property
        def capabilities(self) -> Any:
            return dataclasses.replace(capabilities_of(self._inner), small=True)

    monkeypatch.setitem(registry._registered, "small-openai", SmallOpenAI)
    toml = (magray_home / "config.toml").read_text(encoding="utf-8")
    (magray_home / "config.toml").write_text(
        toml.replace('type = "openai"', 'type = "small-openai"'), encoding="utf-8"
    )


def test_streamed_deltas_are_the_stored_answer_when_a_citation_is_corrected(
    llm: Scripted,
    make_client: AppFactory,
    key: Any,
    magray_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small model's wrong citation is corrected before it is sent, not after."""
    declare_small(magray_home, monkeypatch)
    client = make_client()
    h = key("writer")
    port = client.post(
        "/v1/memories", json={"text": "The staging database listens on port 5433."}, headers=h
    ).json()["id"]
    client.post(
        "/v1/memories", json={"text": "The staging database runs PostgreSQL 16."}, headers=h
    )
    question = {"question": "Which port does the staging database listen on?"}
    llm.add(oa_stream(["I don't know."]))
    shown = [m["id"] for m in client.post("/v1/ask", json=question, headers=h).json()["memories"]]
    holder = shown.index(port) + 1
    other = 3 - holder
    pieces = ["The staging database", " listens on port 5433 [", str(other), "]."]
    llm.add(oa_stream(pieces))
    r = client.post("/v1/ask", json=question, headers={**h, "accept": "text/event-stream"})
    events = parse_sse(r.text)
    deltas = "".join(e[1]["text"] for e in events if e[0] == "delta")
    result = events[-1][1]
    assert events[-1][0] == "result"
    assert result["answer"] == f"The staging database listens on port 5433 [{holder}]."
    assert deltas == result["answer"]  # what the client was sent is what is stored
    assert result["cited"] == [port]
    assert result["notes"] == [f"citation [{other}] → [{holder}]: that memory holds the answer"]


def test_an_answer_the_memories_do_not_hold_is_sent_as_i_dont_know(
    llm: Scripted,
    make_client: AppFactory,
    key: Any,
    magray_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small model's made-up value is never sent: the deltas are the stored answer."""
    declare_small(magray_home, monkeypatch)
    client = make_client()
    h = key("writer")
    client.post(
        "/v1/memories", json={"text": "The staging database listens on port 5433."}, headers=h
    )
    question = {"question": "Which port does the staging database listen on?"}
    llm.add(oa_stream(["The staging database", " listens on port 6543", " [1]. It is"]))
    r = client.post("/v1/ask", json=question, headers={**h, "accept": "text/event-stream"})
    events = parse_sse(r.text)
    deltas = "".join(e[1]["text"] for e in events if e[0] == "delta")
    result = events[-1][1]
    assert result["answer"] == "I don't know." == deltas
    assert result["cited"] == [] and "replaced" in result["notes"][0]
    # a grounded answer is sent as it was given
    llm.add(oa_stream(["The staging database", " listens on port 5433", " [1]."]))
    r = client.post("/v1/ask", json=question, headers={**h, "accept": "text/event-stream"})
    events = parse_sse(r.text)
    deltas = "".join(e[1]["text"] for e in events if e[0] == "delta")
    assert events[-1][1]["answer"] == deltas == "The staging database listens on port 5433 [1]."


def test_bad_input_to_a_stream_is_a_problem_not_an_event(
    llm: Scripted, make_client: AppFactory, key: Any
) -> None:
    client = make_client()
    sse = {**key("writer"), "accept": "text/event-stream"}
    r = client.post("/v1/ask", json={"question": "x", "conversation": "nope"}, headers=sse)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "nope" in r.json()["detail"]
    r = client.post("/v1/ask", json={"question": "x", "provider": "nope"}, headers=sse)
    assert r.status_code == 422 and r.json()["type"] == "/problems/unknown-provider"


def test_an_error_event_carries_the_request_id(
    llm: Scripted, make_client: AppFactory, key: Any
) -> None:
    llm.add(Reply(400, {"error": {"message": "bad request", "type": "invalid"}}))
    llm.add(Reply(400, {"error": {"message": "bad request", "type": "invalid"}}))
    client = make_client()
    streamed = client.post(
        "/v1/ask",
        json={"question": "x", "no_memory": True},
        headers={**key("writer"), "accept": "text/event-stream", "x-request-id": "probe-rid-1"},
    )
    (event,) = parse_sse(streamed.text)
    assert event[0] == "error" and event[1]["request_id"] == streamed.headers["x-request-id"]
    assert event[1]["request_id"] not in ("", "-")


def test_a_model_the_local_provider_does_not_run_is_refused_before_streaming(
    make_client: AppFactory, key: Any
) -> None:
    client = make_client()  # the default [llm]: the embedded local provider
    r = client.post(
        "/v1/ask",
        json={"question": "x", "model": "nope", "no_memory": True},
        headers={**key("writer"), "accept": "text/event-stream"},
    )
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "'nope'" in r.json()["detail"] and "leave the model out" in r.json()["detail"]


def test_an_empty_provider_is_a_422_not_the_default(
    llm: Scripted, make_client: AppFactory, key: Any
) -> None:
    client = make_client()
    r = client.post(
        "/v1/ask", json={"question": "x", "no_memory": True, "provider": ""}, headers=key("writer")
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == (
        "the provider name is empty; give one of GET /v1/providers, or leave it out."
    )
    unknown = client.post(
        "/v1/ask", json={"question": "x", "provider": "nope"}, headers=key("writer")
    ).json()["detail"]
    assert unknown.startswith("no LLM provider named 'nope'; configured: ")
    assert unknown.endswith("; GET /v1/providers lists the providers.")
