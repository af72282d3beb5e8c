"""Scripted HTTP servers on 127.0.0.1 speaking the OpenAI and Anthropic wire protocols."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted answer: a JSON body, an SSE stream, or raw bytes."""

    status: int = 200
    body: Any = None
    events: list[str] | None = None  # SSE frames, already formatted
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Scripted:
    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.models = ["gpt-test", "other-model"]
        self.url = ""

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)


def _handler(script: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, reply: Reply) -> None:
            if reply.delay:
                time.sleep(reply.delay)
            if reply.events is not None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                for frame in reply.events:
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
                self.close_connection = True
                return
            data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in reply.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            body = {
                "object": "list",
                "data": [
                    {
                        "id": m,
                        "object": "model",
                        "created": 0,
                        "owned_by": "test",
                        "type": "model",
                        "display_name": m,
                        "created_at": "2025-01-01T00:00:00Z",
                    }
                    for m in script.models
                ],
                "has_more": False,
                "first_id": None,
                "last_id": None,
            }
            self._send(Reply(body=body))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            script.requests.append(json.loads(self.rfile.read(length) or b"{}"))
            script.headers.append({k.lower(): v for k, v in self.headers.items()})
            reply = script.replies.pop(0) if script.replies else Reply(500, {"error": "unscripted"})
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(reply)

    return Handler


@pytest.fixture(autouse=True)
def _close_routers() -> Iterator[None]:
    from .helpers import ROUTERS

    yield
    while ROUTERS:
        ROUTERS.pop().close()


@pytest.fixture
def server() -> Iterator[Scripted]:
    """A fresh scripted server; ``server.url`` is its base URL."""
    script = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield script
    httpd.shutdown()
    httpd.server_close()


server2 = server  # a second, independent server for fallback tests


# -- OpenAI chat-completions ----------------------------------------------------------------


def oa_json(text: str, prompt: int = 7, completion: int = 3) -> Reply:
    return Reply(
        body={
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": "gpt-test",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    )


def _oa_chunk(
    delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, int] | None = None
) -> str:
    chunk: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-test",
        "choices": [],
    }
    if delta is not None:
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage is not None:
        chunk["usage"] = usage
    return f"data: {json.dumps(chunk)}\n\n"


def oa_stream(
    pieces: list[str],
    usage: tuple[int, int] | None = (7, 3),
    tool_calls: list[dict[str, Any]] | None = None,
) -> Reply:
    frames = [_oa_chunk({"role": "assistant", "content": ""})]
    frames += [_oa_chunk({"content": p}) for p in pieces]
    for d in tool_calls or []:
        frames.append(_oa_chunk({"tool_calls": [d]}))
    frames.append(_oa_chunk({}, "tool_calls" if tool_calls else "stop"))
    if usage is not None:
        frames.append(
            _oa_chunk(
                None,
                usage={
                    "prompt_tokens": usage[0],
                    "completion_tokens": usage[1],
                    "total_tokens": sum(usage),
                },
            )
        )
    frames.append("data: [DONE]\n\n")
    return Reply(events=frames)


# -- Anthropic messages -----------------------------------------------------------------------


def _ev(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def an_stream(
    pieces: list[str],
    prompt: int = 11,
    completion: int = 5,
    tool: tuple[str, str, list[str]] | None = None,
) -> Reply:
    frames = [
        _ev(
            "message_start",
            {
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-test",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": 1},
                }
            },
        )
    ]
    frames.append(
        _ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
    )
    for p in pieces:
        frames.append(
            _ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
        )
    frames.append(_ev("content_block_stop", {"index": 0}))
    if tool is not None:
        tid, name, parts = tool
        frames.append(
            _ev(
                "content_block_start",
                {
                    "index": 1,
                    "content_block": {"type": "tool_use", "id": tid, "name": name, "input": {}},
                },
            )
        )
        for part in parts:
            frames.append(
                _ev(
                    "content_block_delta",
                    {"index": 1, "delta": {"type": "input_json_delta", "partial_json": part}},
                )
            )
        frames.append(_ev("content_block_stop", {"index": 1}))
    frames.append(
        _ev(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": completion},
            },
        )
    )
    frames.append(_ev("message_stop", {}))
    return Reply(events=frames)


def write_config(home: Path, text: str) -> None:
    (home / "config.toml").write_text(text, encoding="utf-8")
