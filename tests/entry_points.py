"""A real installed distribution for plugin tests: a dist-info folder and modules on sys.path.

``importlib.metadata`` discovers it exactly as it discovers a ``pip install``ed plugin.
"""

from __future__ import annotations

import importlib
import logging
import sys
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest


@contextmanager
def installed_dist(
    site: Path,
    name: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
) -> Iterator[Path]:
    """Install distribution ``name`` into ``site`` and put it on ``sys.path`` while inside.

    ``entry_points`` maps group -> {entry-point name: "module:attr"}; ``modules`` maps a
    module name to its source. On exit the path and the modules are gone again.
    """
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8"
    )
    sections = [
        f"[{group}]\n" + "".join(f"{ep} = {target}\n" for ep, target in eps.items())
        for group, eps in entry_points.items()
    ]
    (info / "entry_points.txt").write_text("\n".join(sections), encoding="utf-8")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for module in modules or {}:
            sys.modules.pop(module, None)
        importlib.invalidate_caches()


class Plugins:
    """Plugin distributions of one entry-point group, installed for the length of a ``with``."""

    def __init__(self, site: Path, group: str) -> None:
        self.site = site
        self.group = group
        self._stack = ExitStack()

    def add(
        self, dist: str, eps: Mapping[str, str], modules: Mapping[str, str] | None = None
    ) -> None:
        """Install ``dist`` declaring ``eps`` (name -> "module:attr") in the group."""
        where = self.site / dist
        self._stack.enter_context(installed_dist(where, dist, {self.group: eps}, modules))

    def __enter__(self) -> Plugins:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def logged_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warning lines logged so far (a failing plugin is one of these)."""
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def assert_skipped(caplog: pytest.LogCaptureFixture, noun: str, reasons: Mapping[str, str]) -> None:
    """Exactly one warning per plugin of ``reasons``, naming it and containing its reason."""
    found = logged_warnings(caplog)
    assert len(found) == len(reasons), found
    for plugin, reason in reasons.items():
        prefix = f"{noun} plugin {plugin!r} was skipped: "
        assert sum(w.startswith(prefix) and reason in w for w in found) == 1, (plugin, found)
