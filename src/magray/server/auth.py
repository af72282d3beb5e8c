"""Who is calling: the bearer key, its role and tenant, checked on every /v1 request.

``Authorization: Bearer <key>``; no key or an unknown one is 401, a role too weak for the
route is 403, a key over its rate is 429 with ``Retry-After``. With ``server.auth = "off"``
(never the default) a loopback client without a key acts as admin of the ``default`` tenant.

Verified keys are cached by their SHA-256 digest, so a request costs one dictionary lookup
and no key-store query. The cache holds only while the key store is unchanged: every
request asks SQLite for the store's ``data_version`` (a few microseconds, no lock), which
moves whenever any connection of any process commits to it. A key revoked or created by
``magray auth``, by ``DELETE /v1/keys/{id}`` or by another worker therefore takes effect
on the very next request.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from starlette.requests import Request

from magray.server.keys import ApiKey, KeyStore, Role, digest
from magray.server.problems import Problem
from magray.server.ratelimit import TokenBuckets

DEFAULT_TENANT = "default"
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
ANONYMOUS = "anonymous"  # the key id of a key-less loopback client when server.auth is off
CACHE_LIMIT = 10_000  # cached digests (unknown ones too) before the cache starts over


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    role: Role
    tenant: str


class KeyCache:
    """Key lookups by digest, dropped whenever the key store changes (any process)."""

    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._found: dict[str, ApiKey | None] = {}
        self._version: int | None = None
        self._watch: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _store_version(self) -> int | None:
        """The key store's ``data_version``; None while the store does not exist yet."""
        if self._watch is None:
            if not self.keys.path.exists():
                return None
            from magray.sqlite_migrations import connect

            self._watch = connect(self.keys.path, check_same_thread=False, timeout=5)
        row = self._watch.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def get(self, h: str) -> tuple[bool, ApiKey | None]:
        """(True, key or None) when the lookup of digest ``h`` is known and still true."""
        with self._lock:
            try:
                version = self._store_version()
            except sqlite3.Error:
                version = None
            if version is None or version != self._version:
                self._found.clear()
                self._version = version
                return False, None
            if h in self._found:
                return True, self._found[h]
            return False, None

    def put(self, h: str, key: ApiKey | None, version: int | None) -> None:
        with self._lock:
            if version is None or version != self._version:
                return  # the store changed meanwhile: the next request looks again
            if len(self._found) >= CACHE_LIMIT:
                self._found.clear()
            self._found[h] = key

    def lookup(self, secret: str) -> ApiKey | None:
        """The active key for ``secret``: from the cache, else from the key store."""
        h = digest(secret)
        known, key = self.get(h)
        if known:
            return key
        version = self._version  # read before the query: a commit after it drops the entry
        key = self.keys.check(secret)
        self.put(h, key, version)
        return key

    def forget(self) -> None:
        with self._lock:
            self._found.clear()
            self._version = None

    def close(self) -> None:
        with self._lock:
            if self._watch is not None:
                self._watch.close()
                self._watch = None


class Authenticator:
    """Checks keys (through :class:`KeyCache`), roles and rate limits."""

    def __init__(self, keys: KeyStore, buckets: TokenBuckets, *, auth_on: bool) -> None:
        self.keys = keys
        self.buckets = buckets
        self.auth_on = auth_on
        self.cache = KeyCache(keys)

    async def _lookup(self, secret: str) -> ApiKey | None:
        known, key = self.cache.get(digest(secret))
        if known:
            return key
        # a key-store query: off the event loop
        return await anyio.to_thread.run_sync(self.cache.lookup, secret)

    def cached(self, header: str, needed: Role) -> Principal | None:
        """The caller of an ``Authorization`` header, when its key is in the cache, allows
        ``needed`` and has a token left (taken); None for anything else (no key, an unknown
        or uncached key, a weak role, over the rate: :meth:`require` answers those).

        The fast path of a hot route: no key-store query, no problem raised."""
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        known, key = self.cache.get(digest(secret.strip()))
        if not known or key is None or not key.role.allows(needed):
            return None
        if self.buckets.take(key.id) > 0:  # a refused take leaves the bucket as it was
            return None
        return Principal(key.id, key.role, key.tenant)

    def forget(self) -> None:
        """Drop the cached lookups (the key store's version drops them anyway)."""
        self.cache.forget()

    def close(self) -> None:
        self.cache.close()

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

    async def principal(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        client = request.client.host if request.client else ""
        if not header:
            if not self.auth_on and client in LOOPBACK:
                return Principal(ANONYMOUS, Role.ADMIN, DEFAULT_TENANT)
            self._throttle_denials(client)
            raise Problem(
                401,
                "unauthorized",
                "API key required",
                "send an API key as 'Authorization: Bearer <key>'; create one with"
                " `magray auth create-key --role reader --tenant NAME`.",
                {"WWW-Authenticate": "Bearer"},
            )
        bearer = scheme.lower() == "bearer"
        key = await self._lookup(secret.strip()) if bearer else None
        if key is None:
            self._throttle_denials(client)
            request.state.presented = "invalid-key"
            if not bearer:
                detail = (
                    f"the Authorization header uses the {scheme[:20]!r} scheme; send the API"
                    " key as 'Authorization: Bearer <key>'."
                )
            elif not secret.strip():
                detail = (
                    "the Authorization header has no key after 'Bearer'; send the API key there."
                )
            else:
                detail = (
                    "the API key is unknown or revoked; check it, or create a new one with"
                    " `magray auth create-key`."
                )
            raise Problem(
                401,
                "unauthorized",
                "Invalid API key",
                detail,
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return Principal(key.id, key.role, key.tenant)

    def require(self, needed: Role) -> Callable[[Request], Awaitable[Principal]]:
        """A FastAPI dependency: the caller, if its role allows ``needed`` and it has tokens.

        Asynchronous, so that the check runs on the event loop and not in a worker thread.
        """

        async def dependency(request: Request) -> Principal:
            who = await self.principal(request)
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
                    f"{'this client' if who.key_id == ANONYMOUS else 'this key'} sent more"
                    f" than {self.buckets.rate:g} request{'' if self.buckets.rate == 1 else 's'}"
                    " per second (server.rate); retry after the seconds in Retry-After.",
                    {"Retry-After": TokenBuckets.retry_after(wait)},
                )
            return who

        return dependency
