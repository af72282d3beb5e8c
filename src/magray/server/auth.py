"""Who is calling: the bearer key, its role and tenant, checked on every /v1 request.

``Authorization: Bearer <key>``; no key or an unknown one is 401, a role too weak for the
route is 403, a key over its rate is 429 with ``Retry-After``. With ``server.auth = "off"``
(never the default) a loopback client without a key acts as admin of the ``default`` tenant.
Key lookups are cached for a few seconds; a revoked key stops working within that time (at
once in the process that revoked it through ``DELETE /v1/keys/{id}``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

from magray.server.keys import ApiKey, KeyStore, Role, digest
from magray.server.problems import Problem
from magray.server.ratelimit import TokenBuckets

DEFAULT_TENANT = "default"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
CACHE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    tenant: str


class Authenticator:
    """Checks keys (with a short cache), roles and rate limits."""

    def __init__(self, keys: KeyStore, buckets: TokenBuckets, *, auth_on: bool) -> None:
        self.keys = keys
        self.buckets = buckets
        self.auth_on = auth_on
        self._cache: dict[str, tuple[ApiKey | None, float]] = {}
        self._lock = threading.Lock()

    def _lookup(self, secret: str) -> ApiKey | None:
        h = digest(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(h)
            if hit is not None and now - hit[1] < CACHE_SECONDS:
                return hit[0]
        key = self.keys.check(secret)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[h] = (key, now)
        return key

    def forget(self) -> None:
        """Drop the cached lookups (a key revoked here stops working at once in this process)."""
        with self._lock:
            self._cache.clear()

    def _throttle_denials(self, client: str) -> None:
        """Refusals are audited; a client sending many bad keys gets 429s, which are not."""
        wait = self.buckets.take(f"client:{client}")
        if wait > 0:
            raise Problem(
                429,
                "rate-limited",
                "Too many refused requests",
                "this client sent too many requests without a valid API key; retry after the"
                " seconds in Retry-After with a valid key.",
                {"Retry-After": TokenBuckets.retry_after(wait)},
            )

    def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        client = request.client.host if request.client else ""
        if not header:
            if not self.auth_on and client in LOOPBACK:
                return Principal("anonymous", Role.ADMIN, DEFAULT_TENANT)
            self._throttle_denials(client)
            raise Problem(
                401,
                "unauthorized",
                "API key required",
                "send an API key as 'Authorization: Bearer <key>'; create one with"
                " `magray auth create-key --role reader --tenant NAME`.",
                {"WWW-Authenticate": "Bearer"},
            )
        key = self._lookup(secret.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            self._throttle_denials(client)
            request.state.presented = "invalid-key"
            raise Problem(
                401,
                "unauthorized",
                "Invalid API key",
                "the API key is unknown or revoked; check it, or create a new one with"
                " `magray auth create-key`.",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return Principal(key.id, key.role, key.tenant)

    def require(self, needed: Role) -> Callable[[Request], Principal]:
        """A FastAPI dependency: the caller, if its role allows ``needed`` and it has tokens."""

        def dependency(request: Request) -> Principal:
            who = self.principal(request)
            request.state.principal = who
            if not who.role.allows(needed):
                raise Problem(
                    403,
                    "forbidden",
                    "Role not allowed",
                    f"this key has the role {who.role}, and this call needs {needed}; use a"
                    f" key with the role {needed} or higher.",
                )
            wait = self.buckets.take(who.key_id)
            if wait > 0:
                raise Problem(
                    429,
                    "rate-limited",
                    "Too many requests",
                    f"this key sent more than {self.buckets.rate:g} requests per second;"
                    " retry after the seconds in Retry-After.",
                    {"Retry-After": TokenBuckets.retry_after(wait)},
                )
            return who

        return dependency
