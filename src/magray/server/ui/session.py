"""Signing in to the dashboard: the API key in an HTTP-only cookie, and CSRF tokens.

The cookie holds the API key itself (``HttpOnly``, ``SameSite=Strict``, ``Path=/ui``, and
``Secure`` unless the page was served over plain HTTP to a non-loopback host, where a browser
would drop it). Every mutating form carries a CSRF token, an HMAC of the key, so a page
elsewhere can neither read nor forge it; the ``Origin`` header, when sent, must be this host.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from magray.server.keys import KeyStore

COOKIE = "magray_key"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOOPBACK = {"127.0.0.1", "::1", "localhost", "[::1]"}


@dataclass(frozen=True, slots=True)
class User:
    """Who is signed in: the key (sent on to the API), its id, role and tenant."""

    key: str
    key_id: str
    role: str
    tenant: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.key)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_write(self) -> bool:
        return self.role in ("admin", "writer")


def csrf_token(key: str) -> str:
    """The CSRF token of a session: unguessable without the key, the same in every worker."""
    return hmac.new(key.encode(), b"magray-ui-csrf", hashlib.sha256).hexdigest()[:40]


def current_user(request: Request, keys: KeyStore) -> User | None:
    """The signed-in user, or None when the cookie is missing, unknown or revoked."""
    key = request.cookies.get(COOKIE, "")
    if not key or len(key) > 512:
        return None
    found = keys.check(key)
    if found is None:
        return None
    return User(key, found.id, str(found.role), found.tenant)


def lookup(key: str, keys: KeyStore) -> User | None:
    found = keys.check(key) if key and len(key) <= 512 else None
    return None if found is None else User(key, found.id, str(found.role), found.tenant)


def _host(request: Request) -> str:
    return request.headers.get("host", "").rsplit(":", 1)[0].lower()


def secure_cookie(request: Request) -> bool:
    """``Secure`` unless this is plain HTTP to a non-loopback host (the browser would drop it)."""
    return request.url.scheme == "https" or _host(request) in LOOPBACK


def set_login(response: Response, request: Request, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        secure=secure_cookie(request),
        samesite="strict",
        path="/ui",
    )


def clear_login(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another site."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1].lower() == host.lower()


async def csrf_ok(request: Request, user: User) -> bool:
    """The form field or header carries this session's token, and the origin is ours."""
    if not same_origin(request):
        return False
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else ""
    return hmac.compare_digest(given, user.csrf)
