"""uvicorn's HTTP protocols, answering a request they cannot parse with a problem body.

A request that is not valid HTTP/1.1 never reaches the app: uvicorn's parser refuses it and
answers ``400`` in ``text/plain``. That happens to a URL of 64 KiB or more (httptools keeps
URL offsets in 16 bits) and, on h11, to a request line and headers over 16 KiB together.
The app's own limit on URLs (:data:`magray.server.guard.MAX_URL_BYTES`, answered 414) is
lower, so a long URL normally gets the app's answer; these protocols give the parser's
answers the same RFC 9457 shape: ``application/problem+json`` with one sentence to act on.

``magray serve`` runs :data:`ProblemHTTPProtocol`: httptools when it is installed (as
uvicorn's ``auto`` would choose), else h11.

httptools takes a request head of any size, so on it a client could make the server hold
megabytes of headers before the app's limit (:data:`magray.server.guard.MAX_HEADER_BYTES`,
answered 431) sees them. The httptools protocol therefore counts the bytes of a head still
incomplete and answers ``431`` and closes once they pass :data:`HEAD_LIMIT` (above what the
app's 414 and 431 answer themselves). h11 already refuses a head over 16 KiB (``400``).
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from magray.server.problems import PROBLEM_JSON, body

URL_LIMIT_OF_HTTPTOOLS = 65_535
#: bytes of an incomplete request head (request line and headers) at which httptools stops:
#: a URL as long as httptools takes, headers up to the app's limit, and room to spare
HEAD_LIMIT = 96 * 1024
TITLE = "Bad request"


def problem_bytes(detail: str, status: int = 400) -> bytes:
    """The JSON body of an answer of the HTTP parser (``400``, or ``431`` for a long head)."""
    if status == 431:
        return json.dumps(
            body(431, "headers-too-large", "Request headers too large", detail)
        ).encode()
    return json.dumps(body(400, "bad-request", TITLE, detail)).encode()


def _headers(data: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),
    ]


class ProblemH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; an unparsable request gets a problem body."""

    def send_400_response(self, msg: str) -> None:
        data = problem_bytes(
            "the request is not valid HTTP/1.1, or its request line and headers pass 16 KiB"
            " together; check them, and send a long query in the body of a POST."
        )
        event = h11.Response(status_code=400, headers=_headers(data), reason=b"Bad Request")
        self.transport.write(self.conn.send(event) or b"")
        self.transport.write(self.conn.send(h11.Data(data=data)) or b"")
        self.transport.write(self.conn.send(h11.EndOfMessage()) or b"")
        self.transport.close()


ProblemHTTPProtocol: type[asyncio.Protocol] = ProblemH11Protocol

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of the server extra
    pass
else:

    class ProblemHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol; an unparsable request gets a problem body, and a
        request head past :data:`HEAD_LIMIT` a ``431`` before it is read whole."""

        _in_head = False
        _head_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head, self._head_bytes = True, 0

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self.transport.is_closing():
                return
            # all of ``data`` went to a head still incomplete (but for the end of a
            # pipelined request before it: a slight over-count)
            self._head_bytes += len(data)
            if self._head_bytes > HEAD_LIMIT:
                self._in_head = False
                self.logger.warning("Request head over %d bytes refused.", HEAD_LIMIT)
                self._send_problem(
                    431,
                    b"Request Header Fields Too Large",
                    f"the request line and headers pass {HEAD_LIMIT // 1024} KiB; send fewer"
                    " or shorter headers (put data in the body).",
                )

        def send_400_response(self, msg: str) -> None:
            if len(getattr(self, "url", b"")) >= URL_LIMIT_OF_HTTPTOOLS - 64:
                detail = (
                    "the URL is 64 KiB or longer; send a long query in the body of a POST"
                    " (as POST /v1/memories/search takes it)."
                )
            else:
                detail = "the request is not valid HTTP/1.1; check its request line and headers."
            self._send_problem(400, b"Bad Request", detail)

        def _send_problem(self, status: int, reason: bytes, detail: str) -> None:
            data = problem_bytes(detail, status)
            head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
            for name, value in [*self.server_state.default_headers, *_headers(data)]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", data]))
            self.transport.close()

    ProblemHTTPProtocol = ProblemHttpToolsProtocol
