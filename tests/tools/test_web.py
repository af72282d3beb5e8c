"""web_fetch and web_search: the SSRF guard, caps, redirects and HTML → text, on loopback."""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from magray.agent.executor import Executor, is_transient
from magray.agent.plan import Plan, Step
from magray.config import load_settings
from magray.config.sections import WebSettings
from magray.errors import ConfigError, DeniedError, ToolError, UsageError
from magray.tools.audit import AuditLog
from magray.tools.base import ToolContext
from magray.tools.invoke import invoke
from magray.tools.policy import Action, Mode, Policy, make_rule
from magray.tools.registry import default_registry
from magray.tools.web import WebFetch, WebSearch
from magray.tools.web_text import html_to_text

PAGE = (
    "<html><head><title>The Title</title><style>p{}</style></head><body>"
    "<nav>menu</nav><script>alert(1)</script><h1>Hello</h1><p>First  para.</p>"
    "<p>Second<br>line</p><ul><li>one</li><li>two</li></ul></body></html>"
)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        if self.path == "/page":
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
        elif self.path == "/big":
            self._send(200, b"x" * 50_000, "text/plain")
        elif self.path == "/slow":
            time.sleep(2)
            self._send(200, b"late", "text/plain")
        elif self.path == "/redirect":
            self._send(302, b"", "text/plain", Location=f"http://127.0.0.1:{port}/page")
        elif self.path == "/to-localhost":
            self._send(302, b"", "text/plain", Location=f"http://localhost:{port}/page")
        elif self.path == "/flaky":
            # busy on the first request, fine from the second on
            hits = getattr(self.server, "flaky_hits", 0)
            self.server.flaky_hits = hits + 1  # type: ignore[attr-defined]
            if hits == 0:
                self._send(503, b"busy", "text/plain", **{"Retry-After": "1"})
            else:
                self._send(200, b"fine", "text/plain")
        elif self.path.startswith("/status/"):
            code = int(self.path.split("?", 1)[0].rsplit("/", 1)[1])
            self._send(code, b"status", "text/plain")
        elif self.path.startswith("/search"):
            results = {"results": [{"title": "T", "url": "https://e.test/", "content": "S"}]}
            self._send(200, json.dumps(results).encode(), "application/json")
        else:
            self._send(404, b"no", "text/plain")


@pytest.fixture
def server() -> Iterator[int]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.db")


YES = Policy(mode=Mode(yes=True))


def fetch(url: str, ctx: ToolContext, audit: AuditLog, tool: WebFetch | None = None) -> Any:
    return invoke(tool or WebFetch(), {"url": url}, ctx, YES, audit)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:8080/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://100.64.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
    ],
)
def test_private_addresses_are_refused_and_audited(
    url: str, ctx: ToolContext, audit: AuditLog
) -> None:
    with pytest.raises(DeniedError, match="server-side request forgery"):
        fetch(url, ctx, audit)
    row = audit.rows()[-1]
    assert (row.tool, row.decision, row.outcome) == ("web_fetch", "deny", "denied")


def test_a_name_resolving_to_loopback_is_refused(
    ctx: ToolContext, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "innocent.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(DeniedError, match=r"innocent\.example resolves to 127\.0\.0\.1"):
        fetch("http://innocent.example/", ctx, audit)
    assert audit.rows()[-1].outcome == "denied"


def test_only_http_and_https(ctx: ToolContext, audit: AuditLog) -> None:
    with pytest.raises(UsageError, match="only http and https"):
        fetch("file:///etc/passwd", ctx, audit)


def test_html_is_made_readable(server: int, workspace: Path, audit: AuditLog) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    done = fetch(f"http://127.0.0.1:{server}/page", ctx, audit)
    assert done.result.data["title"] == "The Title"
    assert done.result.output == (
        "# The Title\n\n# Hello\n\nFirst para.\n\nSecond\nline\n\n- one\n- two"
    )


def test_html_to_text_drops_scripts_and_keeps_headings() -> None:
    title, text = html_to_text(PAGE)
    assert title == "The Title"
    assert "alert" not in text and "menu" not in text and "p{}" not in text
    assert text.startswith("# Hello")


def test_redirect_to_loopback_is_refused(
    server: int, workspace: Path, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first hop's host is allowed to be private; the redirect goes to 127.0.0.1, which is not.
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "allowed.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("allowed.test",))
    with pytest.raises(DeniedError, match=r"127\.0\.0\.1 resolves to 127\.0\.0\.1"):
        fetch(f"http://allowed.test:{server}/redirect", ctx, audit)
    assert audit.rows()[-1].outcome == "denied"
    # the same redirect is followed when both hosts are allowed
    ctx = ToolContext(
        roots=(workspace,), timeout=5, allow_private_hosts=("allowed.test", "127.0.0.1")
    )
    done = fetch(f"http://allowed.test:{server}/redirect", ctx, audit)
    assert done.result.data["redirects"] == [f"http://allowed.test:{server}/redirect"]
    assert done.result.data["title"] == "The Title"


def test_oversized_body_is_cut_with_a_note(server: int, workspace: Path, audit: AuditLog) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    done = fetch(f"http://127.0.0.1:{server}/big", ctx, audit, WebFetch(max_bytes=1000))
    assert done.result.data["truncated"] is True
    assert done.result.data["bytes"] == 1000
    assert done.result.output.endswith("[… body truncated at 1000 bytes]")


def test_slow_server_hits_the_time_cap(server: int, workspace: Path, audit: AuditLog) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=0.5, allow_private_hosts=("127.0.0.1",))
    with pytest.raises(ToolError, match=r"longer than 0\.5s") as info:
        fetch(f"http://127.0.0.1:{server}/slow", ctx, audit)
    assert info.value.transient is True
    assert audit.rows()[-1].outcome == "error"


def test_http_errors_are_failed_results(server: int, workspace: Path, audit: AuditLog) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    done = fetch(f"http://127.0.0.1:{server}/missing", ctx, audit)
    assert not done.result.ok and "HTTP 404" in (done.result.error or "")
    assert done.result.data["transient"] is False


@pytest.mark.parametrize(
    ("status", "transient"),
    [(429, True), (502, True), (503, True), (504, True), (400, False), (403, False), (500, False)],
)
def test_only_try_again_statuses_are_transient(
    status: int, transient: bool, server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    done = fetch(f"http://127.0.0.1:{server}/status/{status}", ctx, audit)
    assert not done.result.ok
    assert done.result.data["transient"] is transient
    assert is_transient(done.result, None) is transient


def run_step(url: str, ctx: ToolContext, audit: AuditLog) -> Any:
    executor = Executor(default_registry(), ctx, YES, audit)
    (result,) = executor.run(Plan("fetch", (Step("s", "web_fetch", {"url": url}),)))
    return result


def test_executor_retries_a_503_once_and_the_step_succeeds(
    server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    result = run_step(f"http://127.0.0.1:{server}/flaky", ctx, audit)
    assert (result.status, result.attempts, result.output) == ("ok", 2, "fine")
    assert [r.outcome for r in audit.rows()] == ["failed", "ok"]


def test_executor_does_not_retry_a_404(server: int, workspace: Path, audit: AuditLog) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    result = run_step(f"http://127.0.0.1:{server}/missing", ctx, audit)
    assert (result.status, result.attempts) == ("failed", 1)
    assert "HTTP 404" in result.error
    assert [r.outcome for r in audit.rows()] == ["failed"]


def test_a_refused_connection_is_transient(workspace: Path, audit: AuditLog) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    with pytest.raises(ToolError, match="failed") as info:
        fetch(f"http://127.0.0.1:{port}/", ctx, audit)
    assert info.value.transient is True
    # retried once by the executor, then reported as an error
    result = run_step(f"http://127.0.0.1:{port}/", ctx, audit)
    assert (result.status, result.attempts) == ("error", 2)


@pytest.mark.parametrize(
    ("code", "transient"), [(socket.EAI_AGAIN, True), (socket.EAI_NONAME, False)]
)
def test_only_a_temporary_dns_failure_is_transient(
    code: int, transient: bool, ctx: ToolContext, audit: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(code, "name resolution failed")

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(ToolError, match="cannot resolve host") as info:
        fetch("http://somewhere.example/", ctx, audit)
    assert info.value.transient is transient


def test_refusals_and_plain_tool_errors_are_not_transient() -> None:
    assert ToolError("plain").transient is False
    assert is_transient(None, ToolError("plain")) is False
    assert is_transient(None, ToolError("busy", transient=True)) is True
    assert is_transient(None, DeniedError("refused")) is False


def test_host_rules_decide(ctx: ToolContext, audit: AuditLog) -> None:
    tool = WebFetch()
    policy = Policy(rules=(make_rule("web_fetch", Action.DENY, host="*.evil.test"),))
    with pytest.raises(DeniedError, match=r"host='\*\.evil\.test'"):
        invoke(tool, {"url": "https://www.evil.test/"}, ctx, policy, audit)
    assert audit.rows()[-1].decision == "deny"
    allow = Policy(rules=(make_rule("web_fetch", Action.ALLOW, host="docs.python.org"),))
    args = tool.parse({"url": "https://docs.python.org/3/"})
    assert allow.decide(tool, args, ctx).action is Action.ALLOW
    other = tool.parse({"url": "https://example.org/"})
    assert allow.decide(tool, other, ctx).action is Action.ASK


BOTH_LOOPBACKS = ("127.0.0.1", "localhost")


def loopback_rules(localhost: Action | None) -> tuple[Any, ...]:
    """web_fetch allowed on 127.0.0.1, plus a ``localhost`` rule with the given action."""
    allow = make_rule("web_fetch", Action.ALLOW, host="127.0.0.1")
    if localhost is None:
        return (allow,)
    return (allow, make_rule("web_fetch", localhost, host="localhost"))


def test_a_redirect_to_a_denied_host_is_refused_and_audited(
    server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=BOTH_LOOPBACKS)
    url = f"http://127.0.0.1:{server}/to-localhost"
    for mode in (Mode(), Mode(yes=True)):  # --yes never overrides a deny rule
        policy = Policy(rules=loopback_rules(Action.DENY), mode=mode)
        with pytest.raises(DeniedError) as info:
            invoke(WebFetch(), {"url": url}, ctx, policy, audit, confirm=lambda t, s: True)
        assert info.value.message == (
            "denied: web_fetch: redirect to localhost: "
            "policy rule: deny web_fetch host='localhost'."
        )
        row = audit.rows()[-1]
        assert (row.decision, row.outcome) == ("deny", "denied")
        assert row.detail == info.value.message


def test_a_redirect_to_an_allowed_host_is_followed(
    server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=BOTH_LOOPBACKS)
    policy = Policy(rules=loopback_rules(Action.ALLOW))
    url = f"http://127.0.0.1:{server}/to-localhost"
    done = invoke(WebFetch(), {"url": url}, ctx, policy, audit)
    assert done.result.data["url"] == f"http://localhost:{server}/page"
    assert done.result.data["redirects"] == [url]
    assert audit.rows()[-1].outcome == "ok"


def test_a_redirect_to_a_host_that_would_ask_is_asked(
    server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=BOTH_LOOPBACKS)
    url = f"http://127.0.0.1:{server}/to-localhost"
    policy = Policy(rules=loopback_rules(None))
    # nobody to ask: refused, naming the rule that would allow it
    with pytest.raises(DeniedError, match=r"redirect to localhost: .*web_fetch --host localhost"):
        invoke(WebFetch(), {"url": url}, ctx, policy, audit)
    assert audit.rows()[-1].outcome == "denied"
    # a person is asked about the hop (not about the first host, which a rule allows)
    asked: list[str] = []
    answer = False

    def confirm(tool: str, shown: str) -> bool:
        asked.append(shown)
        return answer

    with pytest.raises(DeniedError, match="refused by the user"):
        invoke(WebFetch(), {"url": url}, ctx, policy, audit, confirm)
    answer = True
    done = invoke(WebFetch(), {"url": url}, ctx, policy, audit, confirm)
    assert done.result.data["title"] == "The Title"
    assert asked == [f"follow a redirect: GET http://localhost:{server}/page"] * 2
    # --yes approves the hop like any other ask
    yes = Policy(rules=loopback_rules(None), mode=Mode(yes=True))
    assert invoke(WebFetch(), {"url": url}, ctx, yes, audit).result.ok


def test_a_redirect_within_the_same_host_is_not_decided_again(
    server: int, workspace: Path, audit: AuditLog
) -> None:
    ctx = ToolContext(roots=(workspace,), timeout=5, allow_private_hosts=("127.0.0.1",))
    policy = Policy(rules=loopback_rules(None))

    def nobody(tool: str, shown: str) -> bool:
        raise AssertionError(f"asked about {shown}")

    done = invoke(
        WebFetch(), {"url": f"http://127.0.0.1:{server}/redirect"}, ctx, policy, audit, nobody
    )
    assert done.result.data["title"] == "The Title"


def test_cli_refuses_a_redirect_to_a_denied_host_with_exit_4(
    server: int, workspace: Path, magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from magray.cli.main import app

    runner = CliRunner()
    monkeypatch.setenv("MAGRAY_TOOLS_ALLOW_PRIVATE_HOSTS", "127.0.0.1,localhost")
    for verb, host in (("allow", "127.0.0.1"), ("deny", "localhost")):
        assert runner.invoke(app, ["policy", verb, "web_fetch", "--host", host]).exit_code == 0
    url = f"url=http://127.0.0.1:{server}/to-localhost"
    done = runner.invoke(app, ["tools", "run", "web_fetch", "--root", str(workspace), "-a", url])
    assert done.exit_code == 4
    assert done.stderr == (
        "error: denied: web_fetch: redirect to localhost: "
        "policy rule: deny web_fetch host='localhost'.\n"
    )
    rows = AuditLog(magray_home / "data" / "audit.db").rows()
    assert [(r.decision, r.outcome) for r in rows] == [("deny", "denied")]


def test_web_search_without_a_provider_says_how_to_configure(
    ctx: ToolContext, audit: AuditLog
) -> None:
    home = dataclasses.replace(ctx, settings=load_settings())
    with pytest.raises(ToolError, match=r"no web search provider is configured.*web\.search_url"):
        invoke(WebSearch(), {"query": "python"}, home, YES, audit)


def test_web_search_reads_the_settings_it_is_given_not_the_global_file(
    server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    config = load_settings().paths.config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[web]\nsearch_url = "http://127.0.0.1:9/never?q={query}"\n')
    url = f"http://127.0.0.1:{server}/search?q={{query}}"
    given = load_settings({"web.search_url": url})
    done = invoke(
        WebSearch(), {"query": "a b"}, dataclasses.replace(ctx, settings=given), YES, audit
    )
    assert done.result.data == [{"title": "T", "url": "https://e.test/", "snippet": "S"}]
    with pytest.raises(ConfigError, match=r"^web_search needs MAGRAY's settings; run it in a"):
        invoke(WebSearch(), {"query": "a b"}, ctx, YES, audit)


def test_web_search_through_a_configured_provider(
    server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    url = f"http://127.0.0.1:{server}/search?q={{query}}"
    tool = WebSearch(WebSettings(search_url=url))
    done = invoke(tool, {"query": "a b"}, ctx, YES, audit)
    assert done.result.data == [{"title": "T", "url": "https://e.test/", "snippet": "S"}]


@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (401, False)])
def test_web_search_marks_a_busy_provider_transient(
    status: int, transient: bool, server: int, ctx: ToolContext, audit: AuditLog
) -> None:
    url = f"http://127.0.0.1:{server}/status/{status}?q={{query}}"
    tool = WebSearch(WebSettings(search_url=url))
    with pytest.raises(ToolError, match=f"HTTP {status}") as info:
        invoke(tool, {"query": "a b"}, ctx, YES, audit)
    assert info.value.transient is transient
