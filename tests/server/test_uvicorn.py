"""A real `magray serve` (uvicorn) on loopback, with the real embedding model.

Readiness is polled on /healthz with a generous deadline; nothing here times the server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from tests.conftest import REPO
from tests.server.llm_servers import Gate, SlowStream, provider_toml

DEADLINE = 180.0  # seconds: generous, only ever reached when something is broken


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def cli(home: Path, *args: str) -> str:
    env = {**os.environ, "MAGRAY_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    out = subprocess.run(
        [sys.executable, "-m", "magray", *args], env=env, capture_output=True, check=True
    )
    return out.stdout.decode()


@pytest.fixture
def serve(magray_home: Path, default_model_dir: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(llm_url: str, *extra: str) -> Served:
        (magray_home / "config.toml").write_text(provider_toml(llm_url), encoding="utf-8")
        port = free_port()
        log = magray_home / "serve.log"
        env = {
            **os.environ,
            "MAGRAY_HOME": str(magray_home),
            "PYTHONPATH": str(REPO / "src"),
            "TEST_KEY": "sk-test-1234567890abcd",
            "MAGRAY_EMBED_THREADS": "1",
        }
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "magray", "serve", "--port", str(port), *extra],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + DEADLINE
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"magray serve exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=10).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"magray serve did not answer /healthz: {log.read_text()}")
            time.sleep(0.2)
        return Served(proc, url, log)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_real_server_answers_logs_json_and_stops_work_on_disconnect(
    serve: Any, magray_home: Path
) -> None:
    slow = SlowStream()
    with slow.running():
        served = serve(slow.url)
        key = json.loads(cli(magray_home, "auth", "create-key", "--role", "writer", "--json"))
        h = {"Authorization": f"Bearer {key['key']}", "X-Request-ID": "req-abc-123"}
        added = httpx.post(
            served.url + "/v1/memories",
            json={"text": "Real model, real server."},
            headers=h,
            timeout=DEADLINE,
        )
        assert added.status_code == 201, added.text
        found = httpx.post(
            served.url + "/v1/memories/search",
            json={"query": "real server"},
            headers=h,
            timeout=DEADLINE,
        ).json()
        assert found["hits"][0]["id"] == added.json()["id"]
        assert httpx.get(served.url + "/openapi.json").json()["paths"]["/v1/ask"]
        # the app's URL limit (414) and uvicorn's parser (400) both answer problem JSON
        # (http.client: httpx refuses to send a URL this long)
        for size, status in ((9_000, 414), (100_000, 400)):
            conn = http.client.HTTPConnection("127.0.0.1", int(served.url.rsplit(":", 1)[1]))
            conn.request("GET", f"/v1/memories?tag={'a' * size}", headers=h)
            long = conn.getresponse()
            text = long.read().decode()
            conn.close()
            assert long.status == status, text
            assert long.getheader("content-type") == "application/problem+json"
            assert json.loads(text)["detail"].endswith("."), text
        # the app answers 431 over its limit (httptools' own limit is higher, see test_protocol)
        big = httpx.get(served.url + "/v1/memories", headers={**h, "x-big": "b" * 50_000})
        assert big.status_code == 431, big.text
        assert big.headers["content-type"] == "application/problem+json"

        events: list[str] = []
        with httpx.stream(
            "POST",
            served.url + "/v1/ask",
            json={"question": "stream a lot", "no_memory": True},
            headers={**h, "accept": "text/event-stream"},
            timeout=DEADLINE,
        ) as r:
            for line in r.iter_lines():
                if line.startswith("event: "):
                    events.append(line[7:])
                if len(events) == 3:
                    break  # the client goes away mid-answer
        assert events == ["delta", "delta", "delta"]
        assert slow.aborted.wait(DEADLINE), "the model kept streaming after the client left"
        assert slow.sent < slow.total

    lines = [json.loads(x) for x in served.log_text().splitlines() if x.startswith("{")]
    mine = [x for x in lines if x.get("request_id") == "req-abc-123"]
    assert mine and all(x["logger"].startswith("magray") for x in mine)
    assert {x["route"] for x in mine} >= {"/v1/memories", "/v1/memories/search"}


def test_graceful_shutdown_finishes_the_request_in_flight(serve: Any, magray_home: Path) -> None:
    gate = Gate("All done.")
    with gate.running():
        served = serve(gate.url)
        key = json.loads(cli(magray_home, "auth", "create-key", "--role", "writer", "--json"))
        h = {"Authorization": f"Bearer {key['key']}"}
        result: dict[str, Any] = {}

        def ask() -> None:
            result["r"] = httpx.post(
                served.url + "/v1/ask",
                json={"question": "finish me", "no_memory": True},
                headers=h,
                timeout=DEADLINE,
            )

        thread = threading.Thread(target=ask)
        thread.start()
        assert gate.entered.wait(DEADLINE), "the request never reached the model"
        served.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + DEADLINE
        while "Shutting down" not in served.log_text():
            assert time.monotonic() < deadline, served.log_text()
            time.sleep(0.1)
        gate.release.set()
        thread.join(DEADLINE)
        # uvicorn re-raises the signal it handled once it has shut down cleanly
        code = served.proc.wait(DEADLINE)
    assert result["r"].status_code == 200, result["r"].text
    assert result["r"].json()["answer"] == "All done."
    assert code in (0, -signal.SIGTERM), served.log_text()
    assert "Finished server process" in served.log_text()


def test_two_workers_share_one_audit_chain(serve: Any, magray_home: Path) -> None:
    """Writes answered by two worker processes append to one chain that still verifies."""
    from concurrent.futures import ThreadPoolExecutor

    from magray.observability.audit_chain import AuditChain, chain_file

    served = serve("http://127.0.0.1:9", "--workers", "2")
    key = json.loads(cli(magray_home, "auth", "create-key", "--role", "writer", "--json"))
    h = {"Authorization": f"Bearer {key['key']}"}

    def add(i: int) -> int:
        r = httpx.post(
            served.url + "/v1/memories", json={"text": f"note {i}"}, headers=h, timeout=DEADLINE
        )
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(add, range(24)))
    errors = [x for x in served.log_text().splitlines() if '"level": "error"' in x]
    assert codes == [201] * 24, errors
    served.proc.send_signal(signal.SIGTERM)
    served.proc.wait(DEADLINE)
    chain = AuditChain(chain_file(magray_home / "data"))
    assert len(chain.entries()) == 24
    assert chain.verify().ok
    workers = {x for x in served.log_text().splitlines() if "Started server process" in x}
    assert len(workers) == 2


def _established_by_process(pids: list[int], port: int) -> dict[int, int]:
    """How many accepted TCP connections on ``port`` each of ``pids`` holds (Linux /proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    counts: dict[int, int] = {}
    for pid in pids:
        links = []
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                links.append(os.readlink(fd))
            except OSError:
                continue
        counts[pid] = sum(link[8:-1] in inodes for link in links if link.startswith("socket:["))
    return counts


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_two_workers_each_take_a_share_of_the_connections(serve: Any) -> None:
    """A burst of keep-alive clients is spread over the workers (each listens on its own
    SO_REUSEPORT socket), not piled onto the worker that woke first; a worker whose
    supervisor is killed stops by itself."""

    served = serve("http://127.0.0.1:9", "--workers", "2")
    port = int(served.url.rsplit(":", 1)[1])
    request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def burst() -> dict[int, int]:
        async def one() -> asyncio.StreamWriter:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")  # answered: the connection is accepted
            return writer

        writers = await asyncio.gather(*(one() for _ in range(100)))  # all at once
        counts = _established_by_process(_children(served.proc.pid), port)
        for writer in writers:
            writer.close()
        return counts

    counts = asyncio.run(burst())
    workers = list(counts)
    serving = sorted(n for n in counts.values() if n)
    assert len(serving) == 2 and sum(serving) == 100, counts
    assert serving[0] >= 20, counts  # a hash split of 100: below 20 has odds of ~1e-9
    served.proc.kill()  # the supervisor only: its workers notice and stop
    served.proc.wait()
    deadline = time.monotonic() + DEADLINE
    while any(Path(f"/proc/{pid}").exists() and _alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "the workers outlived their supervisor"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_loses_no_acknowledged_write(serve: Any, magray_home: Path) -> None:
    """Writers keep adding while the server is killed with SIGKILL: every write it answered
    201 is there after a restart, the store verifies, and the audit chain still verifies."""
    from concurrent.futures import ThreadPoolExecutor

    served = serve("http://127.0.0.1:9")
    key = json.loads(cli(magray_home, "auth", "create-key", "--role", "writer", "--json"))
    h = {"Authorization": f"Bearer {key['key']}"}
    acknowledged: dict[str, str] = {}  # id -> text
    lock = threading.Lock()
    enough = threading.Event()

    def writer(w: int) -> None:
        for i in range(10_000):
            texts = [f"writer {w} note {i} part {j}" for j in range(1 + i % 4)]
            try:
                if len(texts) == 1:
                    r = httpx.post(
                        served.url + "/v1/memories", json={"text": texts[0]}, headers=h, timeout=60
                    )
                    ids = [r.json()["id"]] if r.status_code == 201 else []
                else:
                    body = {"items": [{"text": t} for t in texts]}
                    r = httpx.post(
                        served.url + "/v1/memories/batch", json=body, headers=h, timeout=60
                    )
                    ids = [x["id"] for x in r.json()["results"]] if r.status_code == 201 else []
            except (httpx.TransportError, ValueError):
                return  # the server is gone: this request was never acknowledged
            assert r.status_code == 201, r.text
            with lock:
                acknowledged.update(zip(ids, texts, strict=True))
                if len(acknowledged) >= 60:
                    enough.set()

    with ThreadPoolExecutor(6) as pool:
        running = [pool.submit(writer, w) for w in range(6)]
        assert enough.wait(DEADLINE), served.log_text()[-3000:]
        served.proc.kill()  # SIGKILL, with writes in flight
        served.proc.wait(DEADLINE)
        for done in running:
            done.result(DEADLINE)

    audit = subprocess.run(
        [sys.executable, "-m", "magray", "audit", "verify", "--json"],
        env={**os.environ, "MAGRAY_HOME": str(magray_home), "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    again = serve("http://127.0.0.1:9")
    listed = httpx.get(
        again.url + "/v1/memories", params={"limit": 10_000}, headers=h, timeout=DEADLINE
    )
    stored = {row["id"]: row["text"] for row in listed.json()["records"]}
    missing = {i: t for i, t in acknowledged.items() if stored.get(i) != t}
    assert not missing, missing
    verified = httpx.get(again.url + "/v1/memories/verify", headers=h, timeout=DEADLINE)
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
