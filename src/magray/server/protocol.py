"""uvicorn's HTTP protocols, answering a request they cannot parse with a problem body.

A request that is not valid HTTP/1.1 never reaches the app: uvicorn's parser refuses it and
answers ``400`` in ``text/plain``. That happens to a URL of 64 KiB or more (httptools keeps
URL offsets in 16 bits) and, on h11, to a request line and headers over 16 KiB together.
The app's own limit on URLs (:data:`magray.server.guard.MAX_URL_BYTES`, answered 414) is
lower, so a long URL normally gets the app's answer; these protocols give the parser's
answers the same RFC 9457 shape: ``application/problem+json`` with one sentence to act on.

``magray serve`` runs :data:`ProblemHTTPProtocol`: httptools when it is installed (as
uvicorn's ``auto`` would choose), else h11.
"""

from __future__ import annotations

import asyncio
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from magray.server.problems import PROBLEM_JSON, body

URL_LIMIT_OF_HTTPTOOLS = 65_535
TITLE = "Bad request"


def problem_bytes(detail: str) -> bytes:
    """The JSON body of a ``400`` the HTTP parser answers."""
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
        """uvicorn's httptools protocol; an unparsable request gets a problem body."""

        def send_400_response(self, msg: str) -> None:
            if len(getattr(self, "url", b"")) >= URL_LIMIT_OF_HTTPTOOLS - 64:
                detail = (
                    "the URL is 64 KiB or longer; send a long query in the body of a POST"
                    " (as POST /v1/memories/search takes it)."
                )
            else:
                detail = "the request is not valid HTTP/1.1; check its request line and headers."
            data = problem_bytes(detail)
            head = [b"HTTP/1.1 400 Bad Request\r\n"]
            for name, value in [*self.server_state.default_headers, *_headers(data)]:
                head += [name, b": ", value, b"\r\n"]
            self.transport.write(b"".join([*head, b"\r\n", data]))
            self.transport.close()

    ProblemHTTPProtocol = ProblemHttpToolsProtocol
