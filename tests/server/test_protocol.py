"""uvicorn's parsers answer what they cannot parse with a problem body, on a real loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from magray.server.protocol import ProblemH11Protocol, ProblemHTTPProtocol

DEADLINE = 120.0  # seconds: only ever reached when something is broken


async def _ok(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    headers = [(b"content-length", b"2")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def _serving(protocol: type[asyncio.Protocol]) -> Iterator[int]:
    """A real uvicorn on a free loopback port with ``protocol``, until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    config = uvicorn.Config(
        _ok, host="127.0.0.1", port=free, http=protocol, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield free
    finally:
        server.should_exit = True
        thread.join(DEADLINE)


@pytest.fixture(params=["auto", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    with _serving(ProblemHTTPProtocol if request.param == "auto" else ProblemH11Protocol) as p:
        yield p


def _send(port: int, request: bytes) -> tuple[bytes, dict[str, Any] | bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):  # every answer here closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"application/problem+json" in head:
        return head, json.loads(body)
    return head, body


def test_a_valid_request_still_reaches_the_app(port: int) -> None:
    head, body = _send(port, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and body == b"ok"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nno colon here\r\n\r\n",
    ],
    ids=["request-line", "header"],
)
def test_an_unparsable_request_gets_a_problem(port: int, request_bytes: bytes) -> None:
    _check_problem(*_send(port, request_bytes))


def test_a_100k_url_gets_a_problem_from_httptools() -> None:
    """httptools (what `magray serve` runs) refuses a URL of 64 KiB or more, however it
    arrives; h11 refuses a long head only while it is incomplete, so only httptools here."""
    pytest.importorskip("httptools")
    with _serving(ProblemHTTPProtocol) as port:
        head, body = _send(port, b"GET /?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    _check_problem(head, body)
    assert isinstance(body, dict) and "64 KiB" in str(body["detail"])


def test_httptools_refuses_a_head_that_never_ends_before_reading_it_whole() -> None:
    """httptools takes headers of any size: without a limit of its own the server would
    hold all of them (here: 1 MiB, never finished) until the app could answer 431."""
    pytest.importorskip("httptools")
    from magray.server.protocol import HEAD_LIMIT

    with (
        _serving(ProblemHTTPProtocol) as port,
        socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as conn,
    ):
        conn.sendall(b"GET / HTTP/1.1\r\nHost: h\r\n")
        sent = 0
        try:
            while sent < 1 << 20:  # no blank line: the head is never complete
                conn.sendall(b"x-filler-%d: %s\r\n" % (sent, b"f" * 4000))
                sent += 4016
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while this was still sending
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    head, _, raw = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    problem = json.loads(raw)
    assert problem["status"] == 431 and problem["type"] == "/problems/headers-too-large"
    assert f"{HEAD_LIMIT // 1024} KiB" in problem["detail"]


def _check_problem(head: bytes, body: dict[str, Any] | bytes) -> None:
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"content-type: application/problem+json" in head.lower(), head
    assert isinstance(body, dict) and body["status"] == 400, body
    assert body["type"] == "/problems/bad-request"
    assert str(body["detail"]).endswith("."), body
