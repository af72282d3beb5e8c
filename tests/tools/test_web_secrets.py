"""Secrets stay put: credentials never follow a redirect to another origin, audit rows hold
no secret, and a refusal by a guard inside a tool is audited as deny."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tools.clirun import audit_rows, run, tool


class Recorder(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(dict(self.headers))  # type: ignore[attr-defined]
        target = getattr(self.server, "redirect_to", None)
        if target:
            self.send_response(302)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"results": [{"title": "T", "url": "https://e.test/"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def two_servers() -> Iterator[tuple[Any, Any]]:
    servers = []
    for _ in range(2):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
        srv.daemon_threads = True
        srv.seen = []  # type: ignore[attr-defined]
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    first, second = servers
    first.redirect_to = f"http://127.0.0.1:{second.server_address[1]}"  # type: ignore[attr-defined]
    yield first, second
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("other", ["127.0.0.1", "localhost"], ids=["other-port", "other-host"])
def test_web_search_keeps_its_key_from_a_redirect_target(
    other: str, two_servers: tuple[Any, Any], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = two_servers
    first.redirect_to = f"http://{other}:{second.server_address[1]}"
    monkeypatch.setenv("MAGRAY_TOOLS_ALLOW_PRIVATE_HOSTS", "localhost")
    monkeypatch.setenv(
        "MAGRAY_WEB_SEARCH_URL", f"http://127.0.0.1:{first.server_address[1]}/s?q={{query}}"
    )
    monkeypatch.setenv("MAGRAY_WEB_SEARCH_KEY_ENV", "SEARCH_TEST_KEY")
    monkeypatch.setenv("SEARCH_TEST_KEY", "k3y-value")
    result = tool(workspace, "web_search", "query=magray", yes=True)
    assert result.exit_code == 0, result.output
    assert "https://e.test/" in result.stdout
    assert first.seen[0]["Authorization"] == "Bearer k3y-value"
    assert len(second.seen) == 1 and "Authorization" not in second.seen[0]


def test_audit_rows_hold_no_secrets(workspace: Path, magray_home: Path) -> None:
    url = "ftp://alice:hunter2@files.example/x?access_token=SECRET1&api_key=SECRET2&page=3"
    assert tool(workspace, "web_fetch", f"url={url}", yes=True).exit_code == 2
    url = "https://bob:pa55@[::1]:9/?token=SECRET3&password=SECRET4"
    assert tool(workspace, "web_fetch", f"url={url}", yes=True).exit_code == 4
    shown = run(["tools", "audit", "--json"]).stdout
    stored = (magray_home / "data" / "audit.db").read_bytes()
    for secret in ("hunter2", "SECRET1", "SECRET2", "SECRET3", "SECRET4", "pa55"):
        assert secret not in shown and secret.encode() not in stored
    details = [r.detail for r in audit_rows(magray_home)]
    assert any("access_token=***" in d and "page=3" in d for d in details), details


def test_an_ssrf_refusal_is_audited_as_deny(workspace: Path, magray_home: Path) -> None:
    result = tool(workspace, "web_fetch", "url=http://127.0.0.1:9/", yes=True)
    assert result.exit_code == 4 and "server-side request forgery" in result.stderr
    assert [(r.decision, r.outcome) for r in audit_rows(magray_home)] == [("deny", "denied")]


def test_credentials_follow_only_the_same_origin() -> None:
    from magray.tools.web import hop_headers, same_origin

    first = "http://search.example/q"
    assert same_origin(first, "http://search.example:80/other")
    assert same_origin(first, "https://search.example/q")  # the upgrade to TLS
    assert not same_origin("https://search.example/q", "http://search.example/q")
    assert not same_origin(first, "http://search.example:8080/q")
    assert not same_origin(first, "http://evil.example/q")
    headers = {"Authorization": "Bearer k", "Cookie": "c=1", "Accept": "application/json"}
    assert hop_headers(first, "http://evil.example/", headers) == {"Accept": "application/json"}
    assert hop_headers(first, first, headers) == headers
