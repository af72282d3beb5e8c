"""Entry-point plugins: built-ins and installed packages register through the same path.

A registry (tools, LLM providers, embedders) names its entry-point group and a table of
its own built-ins (``name -> "module:attribute"``). The built-ins are declared as entry
points in ``pyproject.toml`` too; the table loads them when the installed metadata lacks
them (an editable install made before they were declared). Built-ins come first, then the
other entry points; none is loaded twice, and a plugin that fails is one warning.
Nothing here imports a plugin until a registry asks for it.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("magray")

Warn = Callable[[str], None]
Loader = Callable[[], Any]


def load_target(spec: str) -> Any:
    """The object ``"package.module:attr.sub"`` names (the module itself without ``:attr``)."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def _key(name: str, value: str) -> tuple[str, str]:
    return name, "".join(value.split())


def discover(group: str, builtins: Mapping[str, str]) -> list[tuple[str, Loader]]:
    """``(name, load)`` for each built-in, then for each other entry point of ``group``.

    An entry point is loaded once however often it is declared (the same name and target
    in two distributions, or a built-in both installed and in ``builtins``).
    """
    from importlib import metadata  # read only when a registry is first used

    installed = list(metadata.entry_points(group=group))
    by_key = {_key(ep.name, ep.value): ep for ep in reversed(installed)}  # the first one wins
    found: list[tuple[str, Loader]] = []
    seen: set[tuple[str, str]] = set()
    for name, spec in builtins.items():
        ep = by_key.get(_key(name, spec))
        found.append((name, ep.load if ep else functools.partial(load_target, spec)))
        seen.add(_key(name, spec))
    for ep in installed:
        if _key(ep.name, ep.value) not in seen:
            seen.add(_key(ep.name, ep.value))
            found.append((ep.name, ep.load))
    return found


def load_each(
    group: str,
    builtins: Mapping[str, str],
    use: Callable[[str, Any], None],
    *,
    noun: str,
    warn: Warn | None = None,
) -> None:
    """Load every entry point of ``group`` and hand it to ``use(name, obj)``.

    Whatever fails (the import, the target, or ``use`` refusing it) is one warning naming
    the plugin: ``"<noun> plugin 'name' was skipped: reason"``; the others still load.
    """
    say: Warn = warn or (lambda msg: log.warning("%s", msg))
    for name, load in discover(group, builtins):
        try:
            use(name, load())
        except Exception as exc:
            say(f"{noun} plugin {name!r} was skipped: {exc}")
