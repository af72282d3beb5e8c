"""API keys: a TOML file of mode 0600 beside ``config.toml``, never logged, redacted everywhere.

A provider's key is looked up in the environment variable named by its ``api_key_env``
first, then in the keys file under the provider's name. ``redact`` masks every known key
value in a piece of text; error messages built from SDK exceptions pass through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from magray.errors import ConfigError, MissingKeyError, NotFoundError, UsageError, see
from magray.llm.config import ProviderConfig

_known: set[str] = set()  # every key value seen in this process, for redact()

MAX_KEY_CHARS = 16_384  # longer than any provider's key or token


def mask(key: str) -> str:
    """``sk-…abcd``: enough to recognise a key, never enough to use it."""
    if len(key) <= 8:
        return "…" + "*" * 4
    prefix = key[:3] if key[:3].isalnum() or "-" in key[:3] else ""
    return f"{prefix}…{key[-4:]}"


def remember_secret(value: str) -> None:
    """Make ``redact`` mask ``value`` from now on (short values are ignored)."""
    if len(value) >= 8:
        _known.add(value)


def redact(text: str) -> str:
    """``text`` with every known key value replaced by its mask."""
    for key in sorted(_known, key=len, reverse=True):
        if key in text:
            text = text.replace(key, mask(key))
    return text


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or not all(c.isalnum() or c in "-_." for c in name):
        raise UsageError(f"invalid key name {name!r}; use the provider's name, e.g. openai.")
    return name


def _toml_kind(value: object) -> str:
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "list"
    if isinstance(value, bool):
        return "true/false"
    return "number" if isinstance(value, int | float) else "date or time"


class KeyStore:
    """The keys file: ``NAME = "value"`` lines in TOML, mode 0600, replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, str]:
        from magray.fileio import read_toml

        fix = "fix it or remove it and run `magray keys set`"
        data = read_toml(self.path, fix, detail=False)
        for name, value in data.items():
            if not isinstance(value, str):
                # a value this file never holds (a table, a number): refused, not dropped by
                # the next `keys set`, which rewrites the file
                raise ConfigError(
                    f'{self.path}: {name} must be a quoted key (NAME = "value"), not a'
                    f" {_toml_kind(value)}; fix it, or remove it and run `magray keys set"
                    f" {name}`."
                )
        keys = {str(k): v for k, v in data.items()}
        for value in keys.values():
            remember_secret(value)
        return keys

    def _write(self, keys: Mapping[str, str]) -> None:
        from magray.fileio import write_toml

        write_toml(self.path, dict(sorted(keys.items())), mode=0o600)

    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        """Store ``value`` as the key of provider ``name``."""
        name = _check_name(name)
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise UsageError("the key is empty or contains spaces; paste it again.")
        if not (value.isascii() and value.isprintable()):
            # it could never be sent in an HTTP header: fail here, not at the first call
            raise UsageError(
                "the key has characters an API key never has (only printable ASCII); paste it"
                " again."
            )
        if len(value) > MAX_KEY_CHARS:
            raise UsageError(
                f"the key has {len(value):,} characters, more than any API key"
                f" ({MAX_KEY_CHARS:,}); paste the key itself, not a file."
            )
        from magray.fileio import locked

        with locked(self.path):
            keys = self._read()
            keys[name] = value
            remember_secret(value)
            self._write(keys)

    def remove(self, name: str) -> None:
        from magray.fileio import locked

        with locked(self.path):
            keys = self._read()
            if name not in keys:
                raise NotFoundError(f"no key stored for {name!r}", see("magray keys list"))
            del keys[name]
            self._write(keys)

    def list(self) -> dict[str, str]:
        """Names and masked values; the real values never leave this class this way."""
        return {name: mask(value) for name, value in sorted(self._read().items())}


def lookup_key(
    config: ProviderConfig, store: KeyStore, env: Mapping[str, str] | None = None
) -> str | None:
    """The provider's key: ``$api_key_env`` first, then the keys file under its name."""
    env = os.environ if env is None else env
    if config.api_key_env:
        value = env.get(config.api_key_env, "").strip()
        if value:
            remember_secret(value)
            return value
    return store.get(config.name)


def require_key(
    config: ProviderConfig, store: KeyStore, env: Mapping[str, str] | None = None
) -> str:
    """Like ``lookup_key`` but a missing key is a MissingKeyError saying how to set one."""
    value = lookup_key(config, store, env)
    if value:
        return value
    var = config.api_key_env or f"{config.name.upper().replace('-', '_')}_API_KEY"
    how = f"set ${var}" if config.api_key_env else f"set api_key_env = {var!r} and ${var}"
    raise MissingKeyError(
        f"no API key for provider {config.name!r}: {how}, or run `magray keys set {config.name}`."
    )
