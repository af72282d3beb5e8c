"""web_fetch and web_search: HTTP GET behind the SSRF guard, with size and time caps.

Connections go to the address ``netguard.check_url`` checked (``http.client`` with a
pinned socket; TLS still verifies the certificate for the host name and sends it as
SNI), so DNS cannot be rebound between check and connect. Redirects are followed by
hand, at most ``MAX_REDIRECTS`` of them, each hop checked again by the SSRF guard and,
when it leads to a host not reached before, by the policy (``ctx.check_redirect``,
asked before the new host is even resolved). The body is read in
chunks and reading stops at ``max_bytes`` (with a note) or when the time cap is spent.

Failures that may pass on their own are marked transient (the agent's executor tries
them once more): a refused, reset or dropped connection, an unreachable network, the
time cap, and the statuses in ``TRANSIENT_STATUSES``. Other 4xx/5xx answers, SSRF
refusals, TLS errors and size-cap cuts are not.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urljoin, urlsplit

from pydantic import Field

from magray.config.sections import WebSettings
from magray.errors import ToolError
from magray.tools.base import (
    RedirectCheck,
    Risk,
    Tool,
    ToolArgs,
    ToolContext,
    ToolResult,
    cap_output,
)
from magray.tools.netguard import Target, check_url, url_host
from magray.tools.web_text import html_to_text

MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 2_000_000
USER_AGENT = "magray-web-fetch/0.1 (+https://github.com/magray)"
_CHUNK = 16_384
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: statuses that mean "try again later": rate limited, bad gateway, unavailable, gateway timeout
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
_TRANSIENT_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


@dataclass(frozen=True, slots=True)
class Fetched:
    """One finished GET: the final URL, status, headers and (possibly cut) body."""

    url: str
    status: int
    content_type: str
    charset: str
    body: bytes
    truncated: bool
    redirects: tuple[str, ...]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to a fixed, already-checked address; Host stays the name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses

    def _open(self) -> socket.socket:
        last: OSError | None = None
        for addr in self._addresses:
            try:
                return socket.create_connection((addr, self.port), self.timeout)
            except OSError as exc:
                last = exc
        raise last or OSError("no address to connect to")

    def connect(self) -> None:
        self.sock = self._open()


class _PinnedHTTPS(_PinnedHTTP):
    default_port = 443

    def connect(self) -> None:
        context = ssl.create_default_context()
        self.sock = context.wrap_socket(self._open(), server_hostname=self.host)


def _remaining(deadline: float, url: str, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ToolError(
            f"fetching {url} took longer than {timeout:g}s; try a smaller page.", transient=True
        )
    return left


def _is_transient(exc: OSError | http.client.HTTPException) -> bool:
    """Whether a connection failure may pass: refused, reset, cut or unreachable, yes;
    TLS (certificate) failures and malformed answers, no."""
    if isinstance(exc, ssl.SSLError):
        return False
    if isinstance(exc, ConnectionError | http.client.IncompleteRead):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


#: headers that carry credentials: sent only to the origin the caller named
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def _origin(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        return scheme, url_host(url).lower(), parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        return "", "", 0


def same_origin(first: str, hop: str) -> bool:
    """Whether credentials meant for ``first`` may go to ``hop``: the same scheme, host and
    port, or the same host moved from http to https on the default ports."""
    a, b = _origin(first), _origin(hop)
    if a == b:
        return True
    return a[1] == b[1] and (a[0], a[2], b[0], b[2]) == ("http", 80, "https", 443)


def hop_headers(first: str, hop: str, headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` for a request to ``hop``, without credentials when it left ``first``'s origin."""
    if same_origin(first, hop):
        return dict(headers or {})
    return {k: v for k, v in (headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS}


def fetch(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    allow_private: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
    check_redirect: RedirectCheck | None = None,
) -> Fetched:
    """GET ``url`` under the SSRF guard, following redirects by hand, within the caps.

    ``check_redirect`` is called with each redirect URL whose host was not reached before
    in this chain; it raises ``DeniedError`` to refuse the hop. ``headers`` that carry
    credentials (``Authorization``, ``Cookie``) go only to ``url``'s own origin, never to a
    host (or port) a redirect leads to.

    Raises:
        UsageError: not an http(s) URL.
        DeniedError: a hop leads to a loopback, private, link-local, … address, or
            ``check_redirect`` refused it.
        ToolError: network failure, too many redirects, or the time cap was spent
            (``transient`` when a second try may work).
    """
    deadline = time.monotonic() + timeout
    hops: list[str] = []
    current = url
    reached = {url_host(url)}
    for _ in range(MAX_REDIRECTS + 1):
        host = url_host(current)
        if host and host not in reached:
            if check_redirect is not None:
                check_redirect(current)
            reached.add(host)
        target = check_url(current, allow_private)
        cls = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        conn = cls(target, timeout=_remaining(deadline, current, timeout))
        try:
            conn.request(
                "GET",
                target.path,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "*/*",
                    **hop_headers(url, current, headers),
                },
            )
            resp = conn.getresponse()
            location = resp.getheader("Location")
            if resp.status in _REDIRECTS and location:
                resp.close()  # the next hop may be refused: release this socket now
                hops.append(current)
                current = urljoin(current, location)
                continue
            body = bytearray()
            truncated = False
            while True:
                if conn.sock is not None:
                    conn.sock.settimeout(_remaining(deadline, current, timeout))
                chunk = resp.read1(_CHUNK)
                if not chunk:
                    break
                body.extend(chunk)
                if len(body) > max_bytes:
                    del body[max_bytes:]
                    truncated = True
                    break
                _remaining(deadline, current, timeout)
            ctype = resp.headers.get_content_type()
            charset = resp.headers.get_content_charset() or "utf-8"
            return Fetched(
                current, resp.status, ctype, charset, bytes(body), truncated, tuple(hops)
            )
        except TimeoutError:
            raise ToolError(
                f"fetching {current} took longer than {timeout:g}s; try again or a smaller page.",
                transient=True,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ToolError(
                f"fetching {current} failed ({exc or type(exc).__name__}).",
                transient=_is_transient(exc),
            ) from None
        finally:
            conn.close()
    raise ToolError(f"{url} redirected more than {MAX_REDIRECTS} times; giving up.")


def readable(fetched: Fetched) -> tuple[str, str]:
    """``(title, text)`` of a fetched body: HTML made readable, other text decoded as is."""
    try:
        text = fetched.body.decode(fetched.charset, errors="replace")
    except LookupError:
        text = fetched.body.decode("utf-8", errors="replace")
    if fetched.content_type in ("text/html", "application/xhtml+xml"):
        return html_to_text(text)
    textual = fetched.content_type.startswith("text/") or fetched.content_type.endswith(
        ("json", "xml", "javascript")
    )
    if not textual:
        return "", f"[binary content: {fetched.content_type}, {len(fetched.body)} bytes not shown]"
    return "", text


class WebFetchArgs(ToolArgs):
    url: str = Field(description="The http or https URL to fetch.")


class WebFetch(Tool[WebFetchArgs]):
    name = "web_fetch"
    description = (
        "Fetch a web page (GET) and return it as readable text. Private and local addresses "
        "are refused; the size and time are capped."
    )
    risk = Risk.NETWORK
    Args = WebFetchArgs

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes

    def hosts(self, args: WebFetchArgs) -> list[str]:
        host = url_host(args.url)
        return [host] if host else []

    def preview(self, args: WebFetchArgs, ctx: ToolContext) -> str:
        return f"GET {args.url}"

    def run(self, args: WebFetchArgs, ctx: ToolContext) -> ToolResult:
        got = fetch(
            args.url,
            timeout=ctx.timeout,
            max_bytes=self.max_bytes,
            allow_private=ctx.allow_private_hosts,
            check_redirect=ctx.check_redirect,
        )
        title, text = readable(got)
        if got.truncated:
            text += f"\n[… body truncated at {self.max_bytes} bytes]"
        shown = f"# {title}\n\n{text}" if title else text
        data = {
            "url": got.url,
            "status": got.status,
            "content_type": got.content_type,
            "title": title,
            "bytes": len(got.body),
            "truncated": got.truncated,
            "redirects": list(got.redirects),
            "transient": got.status in TRANSIENT_STATUSES,
        }
        ok = got.status < 400
        error = None if ok else f"{got.url} answered HTTP {got.status}."
        return ToolResult(ok=ok, output=cap_output(shown, ctx.output_cap), data=data, error=error)


class WebSearchArgs(ToolArgs):
    query: str = Field(min_length=1, description="What to search the web for.")
    max_results: int = Field(default=8, ge=1, le=50, description="How many results to return.")


def _results(payload: Any) -> list[dict[str, str]]:
    """Search results from common provider shapes (SearXNG, Brave, SerpAPI, custom lists)."""
    items: Any = payload
    if isinstance(payload, dict):
        for path in (("results",), ("items",), ("web", "results"), ("organic_results",)):
            node: Any = payload
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, list):
                items = node
                break
    if not isinstance(items, list):
        raise ToolError("the search provider's JSON has no list of results I recognise.")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        url = item.get("url") or item.get("link") or ""
        title = item.get("title") or url
        snippet = item.get("snippet") or item.get("content") or item.get("description") or ""
        if url:
            out.append({"title": str(title), "url": str(url), "snippet": str(snippet)})
    return out


class WebSearch(Tool[WebSearchArgs]):
    name = "web_search"
    description = (
        "Search the web through the configured provider ([web] search_url) and return "
        "titles, URLs and snippets."
    )
    risk = Risk.NETWORK
    Args = WebSearchArgs

    def __init__(self, settings: WebSettings | None = None) -> None:
        self._web = settings

    def _template(self, ctx: ToolContext) -> tuple[str, str]:
        """The provider URL template and the key variable: the tool's own ``[web]`` settings,
        else those of the call's context (the runtime's)."""
        web = self._web or ctx.require_settings(self.name).web
        template = web.search_url
        if not template:
            raise ToolError(
                "no web search provider is configured; set one with `magray config set "
                "web.search_url 'https://search.example/search?q={query}&format=json'` "
                "(and web.search_key_env to the variable holding its API key, if it needs one)."
            )
        if "{query}" not in template:
            raise ToolError(f"web.search_url must contain {{query}} (got {template!r}).")
        return template, web.search_key_env

    def preview(self, args: WebSearchArgs, ctx: ToolContext) -> str:
        template, _ = self._template(ctx)
        return f"GET {template.replace('{query}', quote_plus(args.query))}"

    def run(self, args: WebSearchArgs, ctx: ToolContext) -> ToolResult:
        template, key_env = self._template(ctx)
        url = template.replace("{query}", quote_plus(args.query))
        headers = {"Accept": "application/json"}
        if key_env:
            key = ctx.base_env().get(key_env) or os.environ.get(key_env)
            if not key:
                raise ToolError(
                    f"web.search_key_env names {key_env}, which is not set; export the key."
                )
            if "{key}" in url:
                url = url.replace("{key}", quote_plus(key))
            else:
                headers["Authorization"] = f"Bearer {key}"
        # The provider's host is the user's own configuration, so it may be a local service.
        host = urlsplit(url).hostname or ""
        got = fetch(
            url,
            timeout=ctx.timeout,
            max_bytes=DEFAULT_MAX_BYTES,
            allow_private=(*ctx.allow_private_hosts, host),
            headers=headers,
            check_redirect=ctx.check_redirect,
        )
        if got.status >= 400:
            raise ToolError(
                f"the search provider answered HTTP {got.status}.",
                transient=got.status in TRANSIENT_STATUSES,
            )
        try:
            payload = json.loads(got.body.decode(got.charset, errors="replace"))
        except (json.JSONDecodeError, LookupError):
            raise ToolError(
                "the search provider did not answer JSON; check web.search_url."
            ) from None
        found = _results(payload)[: args.max_results]
        lines = [
            f"{i}. {r['title']}\n   {r['url']}\n   {r['snippet']}" for i, r in enumerate(found, 1)
        ]
        shown = "\n".join(lines) if lines else "no results"
        return ToolResult(ok=True, output=cap_output(shown, ctx.output_cap), data=found)


TOOLS: tuple[Tool[Any], ...] = (WebFetch(), WebSearch())
