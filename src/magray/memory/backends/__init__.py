"""Memory storage backends, keyed by name (setting ``memory.backend``).

``sqlite`` (SQLite + FTS5 + HNSW files) is built in; ``postgres`` is registered by import
path so that its driver is imported only when it is used. ``register`` adds another one.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from magray.errors import ConfigError
from magray.memory.backends.base import Backend, BackendKind, Warn

if TYPE_CHECKING:
    from magray.config import Settings

__all__ = ["Backend", "BackendKind", "backend_kind", "names", "open_backend", "register"]

# name → "module:attribute" of a BackendKind, imported on first use
_REGISTRY: dict[str, str] = {
    "sqlite": "magray.memory.backends.sqlite:KIND",
    "postgres": "magray.memory.backends.postgres:KIND",
}
_LOADED: dict[str, BackendKind] = {}


def register(name: str, target: str | BackendKind) -> None:
    """Make backend ``name`` available: a ``BackendKind`` or its "module:attribute" path."""
    if isinstance(target, str):
        _REGISTRY[name] = target
        _LOADED.pop(name, None)
    else:
        _REGISTRY[name] = f"<registered {name}>"
        _LOADED[name] = target


def names() -> list[str]:
    """The registered backend names, sorted."""
    return sorted(_REGISTRY)


def backend_kind(name: str) -> BackendKind:
    """The backend registered as ``name``.

    Raises:
        ConfigError: no backend has that name, or its module cannot be imported (the
            message names the extra to install).
    """
    if name in _LOADED:
        return _LOADED[name]
    target = _REGISTRY.get(name)
    if target is None:
        raise ConfigError(
            f"memory.backend {name!r} is unknown; choose one of {', '.join(names())}."
        )
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"the {name} memory backend cannot be loaded ({exc});"
            f" install it with `pip install 'magray[{name}]'`."
        ) from None
    kind: BackendKind = getattr(module, attribute)
    _LOADED[name] = kind
    return kind


def open_backend(settings: Settings, *, warn: Warn | None = None) -> Backend:
    """Open the memory store that ``settings`` name with backend ``memory.backend``."""
    return backend_kind(settings.memory.backend).open(settings, warn=warn)
