"""Writing ``config.toml``: ``magray config set`` and ``config unset`` of a flat setting.

The value is validated like any load before the file is replaced (atomically), so a bad
value never reaches the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from magray.config.options import option
from magray.config.values import coerce


def write_setting(path: Path, key: str, raw: str) -> Any:
    """Validate ``raw`` for ``key`` and store it in ``config.toml`` atomically."""
    from magray.fileio import locked, read_toml, write_toml

    value = coerce(option(key), raw, "config set")
    with locked(path):
        data = read_toml(path)
        section, _, name = key.partition(".")
        table = data.setdefault(section, {})
        table[name] = value
        write_toml(path, data)
    return value


def unset_setting(path: Path, key: str) -> bool:
    """Remove ``key`` from ``config.toml`` (atomically); False if it was not set there."""
    from magray.fileio import locked, read_toml, write_toml

    option(key)
    with locked(path):
        data = read_toml(path)
        section, _, name = key.partition(".")
        table = data.get(section)
        if not isinstance(table, dict) or name not in table:
            return False
        del table[name]
        if not table:
            del data[section]
        write_toml(path, data)
    return True
