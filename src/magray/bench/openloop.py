"""An open-loop HTTP load generator: requests at a fixed rate, latency from when each was due.

wrk keeps each connection busy: it sends the next request when the last is answered (a
closed loop), so it measures how many requests the server can answer, and its latencies at
that point are the queue's (with C connections the mean is C / throughput, Little's law).
The question "what latency do clients see at R requests per second" needs an open loop, as
wrk2 and YCSB's target mode measure it: requests are *due* at a fixed rate, spread evenly
over the connections, and each latency runs from the moment the request was due, not from
when it was sent. A request that had to wait for its connection to be free counts that
wait, so a stalled server cannot hide behind fewer requests (no coordinated omission).

    python -m magray.bench.openloop --url http://127.0.0.1:8765/v1/memories/search \\
        --rate 1000 --connections 100 --seconds 20 --bodies bodies.jsonl \\
        --header "Authorization: Bearer KEY"

Prints one JSON object: the rate asked for and reached, latency percentiles (ms, from the
due time) and the service time alone (from the send), errors and the generator's own CPU.
One process, one event loop (uvloop when installed), raw HTTP/1.1 keep-alive connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Tally:
    """What one run saw; latencies in seconds."""

    latencies: list[float] = field(default_factory=list)  # from the due time
    service: list[float] = field(default_factory=list)  # from the send
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # connection failures, timeouts, unreadable answers
    late: int = 0  # sent after their due time (the connection was still busy)


class Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, await its whole response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    def request(self, payload: bytes) -> asyncio.Future[int]:
        """Send ``payload``; the future gives the response's status code."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.waiter

    def _check(self) -> None:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(head[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self.waiter.set_exception(ValueError("not an HTTP response"))
            return
        length = None
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if length is None:
            self.waiter.set_exception(ValueError("a response without Content-Length"))
            return
        if len(self.buffer) >= end + 4 + length:
            del self.buffer[: end + 4 + length]
            self.waiter.set_result(status)


def render(method: str, url: str, headers: Sequence[str], body: bytes) -> bytes:
    """One HTTP/1.1 request as bytes."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def drive(
    url: str,
    payloads: Sequence[bytes],
    rate: float,
    connections: int,
    seconds: float,
    warmup: float = 0.0,
    timeout: float = 10.0,
) -> Tally:
    """Send ``rate`` requests per second over ``connections`` for ``warmup + seconds``;
    count only those due after the warm-up."""
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # the loop's own clock may tick in whole milliseconds (libuv)
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tally = Tally()
    interval = connections / rate  # each connection's own period
    start = clock() + 0.2
    end = start + warmup + seconds
    counted_from = start + warmup

    async def one(c: int) -> None:
        picker = random.Random(c)
        try:
            _, conn = await loop.create_connection(Connection, host, port)
        except OSError:
            tally.errors += 1
            return
        due = start + interval * c / connections  # evenly staggered over the period
        while due < end:
            now = clock()
            if due > now:
                await asyncio.sleep(due - now)
            elif due >= counted_from:
                tally.late += 1
            if conn.closed:
                try:
                    _, conn = await loop.create_connection(Connection, host, port)
                except OSError:
                    tally.errors += 1
                    due += interval
                    continue
            sent = clock()
            try:
                status = await asyncio.wait_for(
                    conn.request(payloads[picker.randrange(len(payloads))]), timeout
                )
            except (TimeoutError, OSError, ValueError):
                if due >= counted_from:
                    tally.errors += 1
                if conn.transport is not None:
                    conn.transport.close()
                conn.closed = True
                due += interval
                continue
            done = clock()
            if due >= counted_from:
                tally.latencies.append(done - due)
                tally.service.append(done - sent)
                tally.statuses[status] = tally.statuses.get(status, 0) + 1
            due += interval
        if conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(one(c) for c in range(connections)))
    return tally


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0–1) of ``values`` by the nearest-rank method, in ms."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return round(ordered[rank - 1] * 1000, 2)


def summary(tally: Tally, rate: float, connections: int, seconds: float) -> dict[str, Any]:
    """The JSON report of one run."""
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    lat, svc = tally.latencies, tally.service
    return {
        "rate_asked": rate,
        "rate_reached": round(len(lat) / seconds, 1),
        "connections": connections,
        "seconds": seconds,
        "requests": len(lat),
        "ok": ok,
        "errors": tally.errors + len(lat) - ok,
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "late": tally.late,
        "p50_ms": percentile(lat, 0.50),
        "p90_ms": percentile(lat, 0.90),
        "p99_ms": percentile(lat, 0.99),
        "p999_ms": percentile(lat, 0.999),
        "max_ms": percentile(lat, 1.0),
        "service_p50_ms": percentile(svc, 0.50),
        "service_p99_ms": percentile(svc, 0.99),
    }


def run(
    url: str,
    payloads: Sequence[bytes],
    rate: float,
    connections: int,
    seconds: float,
    warmup: float = 0.0,
) -> dict[str, Any]:
    """One open-loop run, on uvloop when installed; the report includes this process's CPU
    per request (the generator shares the machine with the server)."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with the server extra
        runner = asyncio.run
    before = resource.getrusage(resource.RUSAGE_SELF)
    tally = runner(drive(url, payloads, rate, connections, seconds, warmup))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = summary(tally, rate, connections, seconds)
    sent = len(tally.latencies) + tally.errors
    report["generator_cpu_ms_per_request"] = round(cpu * 1000 / max(1, sent), 3)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the URL every request goes to")
    parser.add_argument("--rate", type=float, required=True, help="requests per second, all told")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds at the rate, not counted"
    )
    parser.add_argument("--bodies", type=Path, help="JSON lines: one POST body each (else GET)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    opts = parser.parse_args(argv)
    if opts.rate <= 0 or opts.connections <= 0 or opts.seconds <= 0 or opts.warmup < 0:
        sys.exit("--rate, --connections and --seconds must be positive and --warmup not negative.")
    if opts.bodies:
        lines = [ln for ln in opts.bodies.read_text("utf-8").splitlines() if ln.strip()]
        if not lines:
            sys.exit(f"{opts.bodies} holds no request bodies; write one JSON body per line.")
        payloads = [render("POST", opts.url, opts.header, ln.encode()) for ln in lines]
    else:
        payloads = [render("GET", opts.url, opts.header, b"")]
    report = run(opts.url, payloads, opts.rate, opts.connections, opts.seconds, opts.warmup)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
