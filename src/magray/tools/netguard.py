"""The SSRF guard: a URL is fetched only if every address its host resolves to is public.

``check_url`` parses the URL (http and https only), resolves the host with
``getaddrinfo`` and refuses loopback, private (10/8, 172.16/12, 192.168/16),
link-local (169.254/16, which holds the 169.254.169.254 metadata service), CGNAT
(100.64/10), unique-local and link-local IPv6, unspecified, multicast and reserved
addresses — unless the host matches one of the ``allow_private`` globs. The caller
connects to the addresses in the returned ``Target`` (never resolving again), so a
DNS answer cannot change between the check and the connection.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from magray.errors import DeniedError, ToolError, UsageError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``addresses``) and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from (``None`` when it is a public address)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return blocked_reason(ip.ipv4_mapped)
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a carrier-grade NAT address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def canonical_host(host: str) -> str:
    """``host`` as the resolver reaches it, the form host rules and globs are matched on.

    ``getaddrinfo`` encodes a Unicode name to IDNA (``ｌｏｃａｌｈｏｓｔ`` is ``localhost``,
    a zero-width space vanishes) and reads an IPv4 address in any ``inet_aton`` spelling
    (``2130706433``, ``0x7f.1``, ``0177.0.0.1``); so this lowercases, drops a trailing dot,
    encodes to IDNA, writes IPv4 addresses dotted (also when mapped into IPv6) and IPv6
    addresses compressed.

    Raises:
        UsageError: a name that IDNA cannot encode (an empty or over-long label).
    """
    name = host.strip().lower().rstrip(".")
    if not name.isascii():
        try:
            name = name.encode("idna").decode("ascii").lower().rstrip(".")
        except UnicodeError:
            raise UsageError(f"{host!r} is not a valid host name; check the URL.") from None
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        try:
            return socket.inet_ntoa(socket.inet_aton(name))
        except OSError:
            return name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def url_host(url: str) -> str:
    """The host ``url`` reaches, in the form host rules match (``canonical_host``);
    empty when it has none or cannot be read (``check_url`` says what is wrong with it)."""
    try:
        return canonical_host(urlsplit(url.strip()).hostname or "")
    except (ValueError, UsageError):
        return ""


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """True when ``host`` matches one of the host globs (``*.internal``, ``localhost``)."""
    name = canonical_host(host)
    return any(fnmatchcase(name, p.lower().rstrip(".")) for p in patterns)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (a literal address resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        # EAI_AGAIN is "temporary failure in name resolution": the resolver may answer later.
        again = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
        raise ToolError(
            f"cannot resolve host {host!r} ({exc}); check the URL.", transient=again
        ) from None
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        addr = str(sockaddr[0]).split("%", 1)[0]
        if addr not in seen:
            seen.append(addr)
    return seen


def check_url(url: str, allow_private: Sequence[str] = ()) -> Target:
    """Parse and resolve ``url``; refuse it unless every address is public or the host allowed.

    Raises:
        UsageError: not an http(s) URL, or no host.
        DeniedError: the host resolves to a loopback, private, link-local, … address.
        ToolError: the host does not resolve.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url.strip()):
        raise UsageError("the URL contains control characters (NUL, newline); remove them.")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"{url!r} is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"only http and https URLs can be fetched (got {url!r}).")
    host = canonical_host(parts.hostname or "")
    if not host:
        raise UsageError(f"the URL {url!r} has no host.")
    port = port or (443 if scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    addresses = resolve(host, port)
    if not addresses:
        raise ToolError(f"host {host!r} has no addresses.")
    if not host_allowed(host, allow_private):
        for addr in addresses:
            why = blocked_reason(ipaddress.ip_address(addr))
            if why is not None:
                raise DeniedError(
                    f"{host} resolves to {addr}, {why}; fetching it is refused to prevent "
                    "server-side request forgery (allow the host explicitly if you mean it)."
                )
    return Target(url.strip(), scheme, host, port, path, tuple(addresses))
