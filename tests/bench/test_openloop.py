"""The open-loop load generator: every request due at the rate is sent and counted once.

The servers here are tiny asyncio ones on loopback. Nothing depends on the machine's speed:
a request sent late still counts (its latency grows), so the counts are exact.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from magray.bench import openloop

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answering(status: int, close: bool = False) -> Handler:
    """A server that answers every request with ``status`` (closing after each if asked)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            body = b'{"hits": []}'
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            await writer.drain()
            if close:
                writer.close()
                return

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return guarded


def drive_against(
    handler: Handler, rate: float, connections: int, seconds: float
) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/memories/search"
        payloads = [openloop.render("POST", url, ["Authorization: Bearer k"], b'{"query": "x"}')]
        async with server:
            tally = await openloop.drive(url, payloads, rate, connections, seconds, warmup=0.25)
        return openloop.summary(tally, rate, connections, seconds)

    return asyncio.run(main())


def test_every_due_request_is_sent_and_counted_once() -> None:
    report = drive_against(answering(200), rate=200, connections=4, seconds=1)
    # 4 connections, each one request per 20 ms, 1 s counted after the warm-up
    assert report["requests"] == 200 and report["ok"] == 200 and report["errors"] == 0
    assert report["statuses"] == {"200": 200}
    assert 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert report["service_p50_ms"] <= report["p50_ms"] + 1e-9


def test_errors_and_closed_connections() -> None:
    report = drive_against(answering(503), rate=100, connections=2, seconds=0.5)
    assert report["requests"] == 50 and report["ok"] == 0 and report["errors"] == 50
    assert report["statuses"] == {"503": 50}
    # a server that closes after each answer: the generator reconnects and loses nothing
    report = drive_against(answering(200, close=True), rate=100, connections=2, seconds=0.5)
    assert report["ok"] + report["errors"] == 50 and report["ok"] > 0


def test_render_and_percentiles() -> None:
    raw = openloop.render("GET", "http://h:1/healthz?x=1", ["A: b"], b"")
    assert raw == b"GET /healthz?x=1 HTTP/1.1\r\nHost: h:1\r\nA: b\r\n\r\n"
    raw = openloop.render("POST", "http://h:1/p", [], b"{}")
    assert raw.endswith(b"Content-Length: 2\r\n\r\n{}")
    assert openloop.percentile([0.001, 0.002, 0.003, 0.004], 0.5) == 2.0
    assert openloop.percentile([0.001, 0.002, 0.003, 0.004], 0.99) == 4.0


def test_command_line_refuses_bad_input(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="positive"):
        openloop.main(["--url", "http://127.0.0.1:1/", "--rate", "0"])
    empty = tmp_path / "bodies.jsonl"
    empty.write_text("\n", "utf-8")
    with pytest.raises(SystemExit, match="no request bodies"):
        openloop.main(["--url", "http://127.0.0.1:1/", "--rate", "5", "--bodies", str(empty)])
