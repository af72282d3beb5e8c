"""API keys of the server: created once, stored only as a SHA-256 hash, bound to a role and tenant.

A key is ``mgr_`` plus 43 URL-safe characters (256 random bits); a SHA-256 digest is enough to
store it because it cannot be guessed (no password-style stretching is needed). Keys live in
``<data dir>/server-keys.db``; ``magray auth`` manages them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from magray.errors import Listing, NotFoundError, UsageError, see
from magray.paths import DATABASE_FILES
from magray.sqlite_migrations import opened

PREFIX = "mgr_"
# \A and \Z: "$" would also match before a final newline, and let "acme\n" through.
TENANT_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,62}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""
# The first schema was created without bookkeeping; ``IF NOT EXISTS`` adopts it.
MIGRATIONS = [(1, "api keys", _SCHEMA)]


class Role(StrEnum):
    """What a key may do: read < write < administer (keys, backups, audit)."""

    READER = "reader"
    WRITER = "writer"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = [Role.READER, Role.WRITER, Role.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: Role
    tenant: str
    created_at: float
    revoked_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        from magray.views import iso

        return {
            "id": self.id,
            "role": str(self.role),
            "tenant": self.tenant,
            "created_at": iso(self.created_at),
            "revoked": self.revoked_at is not None,
        }


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise UsageError(f"unknown role {value!r}; use admin, writer or reader.") from None


def check_tenant(value: str) -> str:
    """A tenant name: lower-case letters, digits, '-' and '_', at most 63 characters. A
    control, bidi or zero-width character in a refused name is named by its code point
    (e.g. U+202E): it is invisible in the name as printed."""
    if TENANT_RE.match(value):
        return value
    from magray.memory.records import control_char, invisible_char

    char = control_char(value) or invisible_char(value)
    held = "" if char is None else f" (it holds U+{ord(char):04X}, which does not show)"
    raise UsageError(
        f"invalid tenant {value!r}{held}: use 1-63 lower-case letters, digits, '-' or '_',"
        " starting with a letter or digit."
    )


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keys_file(data_dir: Path) -> Path:
    return data_dir / DATABASE_FILES["server_keys"]


class KeyStore:
    """Creates, lists, revokes and checks API keys."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> AbstractContextManager[sqlite3.Connection]:
        return opened(self.path, migrations=MIGRATIONS, what="the key store")

    def create(self, role: Role, tenant: str) -> tuple[ApiKey, str]:
        """A new key: its record and the secret, which is shown once and never stored."""
        check_tenant(tenant)
        secret = PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id=secrets.token_hex(6), role=role, tenant=tenant, created_at=time.time())
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO keys (id, hash, role, tenant, created_at) VALUES (?, ?, ?, ?, ?)",
                (key.id, digest(secret), str(role), tenant, key.created_at),
            )
        return key, secret

    def list(self) -> list[ApiKey]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, role, tenant, created_at, revoked_at FROM keys ORDER BY created_at"
            ).fetchall()
        return [ApiKey(r[0], Role(r[1]), r[2], r[3], r[4]) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        with self._connect() as conn:
            cur = conn.execute(
                "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (time.time(), key_id),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no active key {key_id!r}", see(Listing.KEYS))
        return next(k for k in self.list() if k.id == key_id)

    def check(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        if not secret.startswith(PREFIX):
            return None
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id, role, tenant, created_at, revoked_at FROM keys"
                " WHERE hash = ? AND revoked_at IS NULL",
                (digest(secret),),
            ).fetchone()
        return None if row is None else ApiKey(row[0], Role(row[1]), row[2], row[3], row[4])
