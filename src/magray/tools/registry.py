"""Tools by name. Built-ins register through ``register``, the same path plugins will use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from magray.errors import NotFoundError, ToolError
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
                f"no tool named {name!r}; known tools: {known} (see `magray tools list`)."
            ) from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self._tools[n] for n in self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)


def register_builtins(registry: ToolRegistry) -> None:
    """Register MAGRAY's own file, git and shell tools."""
    from magray.tools import files, files_edit, git, shell

    for module in (files, files_edit, git, shell):
        for tool in module.TOOLS:
            registry.register(tool)


def default_registry() -> ToolRegistry:
    """A registry holding the built-in tools."""
    registry = ToolRegistry()
    register_builtins(registry)
    return registry
