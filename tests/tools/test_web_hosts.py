"""Host rules hold for every spelling of a host that reaches it (a real loopback server).

``socket.getaddrinfo`` turns a Unicode name into its IDNA form (``ｌｏｃａｌｈｏｓｔ`` is
``localhost``) and takes an IPv4 address in any ``inet_aton`` form (``2130706433``,
``0x7f000001``, ``127.1``, ``0177.0.0.1``) or mapped into IPv6; a host rule is matched
against the host that is reached, so none of these slips past a deny rule.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from magray.errors import DeniedError, UsageError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext
from magray.tools.invoke import invoke
from magray.tools.netguard import canonical_host
from magray.tools.policy import Action, Mode, Policy, make_rule
from magray.tools.web import WebFetch

FULLWIDTH_LOCALHOST = "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54"  # ｌｏｃａｌｈｏｓｔ


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/to-soft-hyphen":
            # headers are Latin-1 on the wire; IDNA drops a soft hyphen: local\xadhost
            self.send_response(302)
            self.send_header("Location", f"http://local\xadhost:{port}/page")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"reached"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    # every host may be private here: loopback stands in for a public host the user denied
    return ToolContext(roots=(tmp_path,), timeout=5, allow_private_hosts=("*",))


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.db")


def deny(host: str) -> Policy:
    return Policy(rules=(make_rule("web_fetch", Action.DENY, host=host),), mode=Mode(yes=True))


@pytest.mark.parametrize(
    "host",
    [
        FULLWIDTH_LOCALHOST,
        f"{FULLWIDTH_LOCALHOST}.",
        "local\u200bhost",  # a zero-width space
        "LocalHost",
    ],
)
def test_a_unicode_spelling_of_a_denied_host_is_denied(
    host: str, server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    with pytest.raises(DeniedError, match="policy rule: deny web_fetch host='localhost'"):
        invoke(WebFetch(), {"url": f"http://{host}:{server}/page"}, ctx, deny("localhost"), audit)
    assert audit.rows()[-1].decision == "deny"


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "[::ffff:127.0.0.1]"]
)
def test_another_spelling_of_a_denied_address_is_denied(
    host: str, server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    with pytest.raises(DeniedError, match=r"policy rule: deny web_fetch host='127\.0\.0\.1'"):
        invoke(WebFetch(), {"url": f"http://{host}:{server}/page"}, ctx, deny("127.0.0.1"), audit)


def test_a_redirect_to_another_spelling_of_a_denied_host_is_refused(
    server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    rules = (
        make_rule("web_fetch", Action.ALLOW, host="127.0.0.1"),
        make_rule("web_fetch", Action.DENY, host="localhost"),
    )
    policy = Policy(rules=rules, mode=Mode(yes=True))
    url = f"http://127.0.0.1:{server}/to-soft-hyphen"
    with pytest.raises(DeniedError, match="redirect to localhost: policy rule: deny"):
        invoke(WebFetch(), {"url": url}, ctx, policy, audit)


def test_an_allowed_host_is_still_reached_by_its_own_name(
    server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    allow = Policy(rules=(make_rule("web_fetch", Action.ALLOW, host="localhost"),))
    done = invoke(WebFetch(), {"url": f"http://localhost:{server}/page"}, ctx, allow, audit)
    assert done.decision == "allow" and done.result.output == "reached"


def test_canonical_host() -> None:
    assert canonical_host(FULLWIDTH_LOCALHOST) == "localhost"
    assert canonical_host("Docs.Python.org.") == "docs.python.org"
    assert canonical_host("bücher.example") == "xn--bcher-kva.example"
    assert canonical_host("0x7f.1") == "127.0.0.1"
    assert canonical_host("::FFFF:10.0.0.1") == "10.0.0.1"
    assert canonical_host("0:0::1") == "::1"
    with pytest.raises(UsageError, match="not a valid host name"):
        canonical_host("\uff41..b")
