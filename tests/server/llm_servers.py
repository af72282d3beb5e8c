"""OpenAI-compatible LLM servers on loopback for the server's tests: a slow stream that
notices when its reader goes away, and a gate that holds its answer until released."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.llm.conftest import _oa_chunk, oa_json


class LLMServer:
    """Base: serves /v1/models; subclasses answer POST /v1/chat/completions."""

    def __init__(self) -> None:
        self.url = ""
        self.requests = 0
        self._httpd: ThreadingHTTPServer | None = None

    def answer(self, handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def running(self) -> Iterator[LLMServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = json.dumps({"object": "list", "data": [{"id": "gpt-test"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                server.requests += 1
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    server.answer(self, request)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()


def start_sse(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True


class SlowStream(LLMServer):
    """Streams ``total`` pieces, one every ``interval`` seconds; records when the reader left."""

    def __init__(self, total: int = 3000, interval: float = 0.02) -> None:
        super().__init__()
        self.total = total
        self.interval = interval
        self.sent = 0
        self.aborted = threading.Event()

    def answer(self, handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        start_sse(handler)
        try:
            handler.wfile.write(_oa_chunk({"role": "assistant", "content": ""}).encode())
            for i in range(self.total):
                handler.wfile.write(_oa_chunk({"content": f"w{i} "}).encode())
                handler.wfile.flush()
                self.sent += 1
                time.sleep(self.interval)
            handler.wfile.write(_oa_chunk({}, "stop").encode())
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.aborted.set()


class Gate(LLMServer):
    """Answers ``text`` (JSON or a stream, as asked) once ``release`` is set."""

    def __init__(self, text: str = "Done after the gate.") -> None:
        super().__init__()
        self.text = text
        self.entered = threading.Event()
        self.release = threading.Event()

    def answer(self, handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        self.entered.set()
        self.release.wait()
        if request.get("stream"):
            start_sse(handler)
            frames = [_oa_chunk({"role": "assistant", "content": ""})]
            frames += [_oa_chunk({"content": w + " "}) for w in self.text.split()]
            frames += [_oa_chunk({}, "stop"), "data: [DONE]\n\n"]
            for frame in frames:
                handler.wfile.write(frame.encode())
            handler.wfile.flush()
            return
        body = json.dumps(oa_json(self.text).body).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


def provider_toml(url: str) -> str:
    """config.toml making the server at ``url`` the default provider."""
    return (
        '[llm]\ndefault = "oa"\n\n[llm.providers.oa]\ntype = "openai"\n'
        f'base_url = "{url}/v1"\nmodel = "gpt-test"\napi_key_env = "TEST_KEY"\n'
        "timeout = 60\nmax_retries = 0\n"
    )
