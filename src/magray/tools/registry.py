"""Tools by name. Built-ins and plugins register the same way: entry points of ``magray.tools``.

Each entry point names a callable that returns a ``Tool`` or an iterable of tools.
The built-ins are declared as entry points too, and are also loaded from
``BUILTIN_PROVIDERS`` when the installed metadata lacks them (an editable install
made before they were declared), never twice; they load before any plugin (see
``magray.plugins``). A plugin that fails to load, returns something else or reuses a
tool name becomes one warning; the other tools still load.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from magray.errors import NotFoundError, ToolError, see
from magray.plugins import load_each, load_target
from magray.tools.base import Tool


class ToolRegistry:
    """A set of tools keyed by name."""

    def __init__(self) -> None:
        self._tools: dict[str, Tool[Any]] = {}

    def register(self, tool: Tool[Any]) -> Tool[Any]:
        """Add ``tool``; a second tool with the same name is an error."""
        if tool.name in self._tools:
            raise ToolError(f"a tool named {tool.name!r} is already registered.")
        self._tools[tool.name] = tool
        return tool

    def get(self, name: str) -> Tool[Any]:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools))
            raise NotFoundError(
                f"no tool named {name!r}; known tools: {known}",
                see("magray tools list", aside=True),
            ) from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self._tools[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


ENTRY_POINT_GROUP = "magray.tools"

#: the built-in providers, by entry-point name: "module:attribute"
BUILTIN_PROVIDERS: dict[str, str] = {
    "files": "magray.tools.files:TOOLS",
    "files_edit": "magray.tools.files_edit:TOOLS",
    "git": "magray.tools.git:TOOLS",
    "shell": "magray.tools.shell:TOOLS",
    "web": "magray.tools.web:TOOLS",
    "memory": "magray.tools.memory_tools:TOOLS",
    "tasks": "magray.tools.task_tools:TOOLS",
}

Warn = Callable[[str], None]


def _tools_from(provider: Any) -> list[Tool[Any]]:
    """The tools a provider gives: a Tool, an iterable of tools, or a callable returning those."""
    made = provider() if callable(provider) and not isinstance(provider, Tool) else provider
    items: Iterable[Any] = [made] if isinstance(made, Tool) else made
    tools = list(items)
    bad = [t for t in tools if not isinstance(t, Tool)]
    if bad:
        raise TypeError(f"returned {type(bad[0]).__name__}, not a magray Tool")
    return tools


def register_builtins(registry: ToolRegistry) -> None:
    """Register MAGRAY's own tools (files, git, shell, web, memory, tasks)."""
    for spec in BUILTIN_PROVIDERS.values():
        for tool in _tools_from(load_target(spec)):
            registry.register(tool)


def load_plugins(registry: ToolRegistry, warn: Warn | None = None) -> None:
    """Register the tools of every ``magray.tools`` entry point, built-ins first.

    A plugin cannot take a built-in tool's name: the built-ins are registered before any
    other entry point, so a clash skips the plugin (one warning), never the built-in.
    """

    def use(name: str, provider: Any) -> None:
        tools = _tools_from(provider)
        clash = [t.name for t in tools if t.name in registry]
        if clash:
            raise ToolError(f"a tool named {clash[0]!r} is already registered")
        for tool in tools:
            registry.register(tool)

    load_each(ENTRY_POINT_GROUP, BUILTIN_PROVIDERS, use, noun="tool", warn=warn)


def default_registry(warn: Warn | None = None) -> ToolRegistry:
    """A registry holding the built-in tools and those of installed plugins."""
    registry = ToolRegistry()
    load_plugins(registry, warn)
    return registry
