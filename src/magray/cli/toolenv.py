"""What `magray run`, `magray chat` and `magray tools ...` share, taken from the runtime.

Thin wrappers over :class:`magray.runtime.Runtime` that print its warnings the CLI way:
roots come from ``--root`` flags, else the ``tools.roots`` setting, else the current
folder; the tool set is the built-ins and plugins plus the tools of configured MCP servers
(all of them for the agent, only the named server for `tools run mcp__S__T`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.runtime import Runtime
    from magray.tools.base import ToolContext
    from magray.tools.policy import Mode, Policy
    from magray.tools.registry import ToolRegistry

_runtimes: dict[int, Runtime] = {}


def _runtime(settings: Settings) -> Runtime:
    """One runtime per settings object, so a warning (no sandbox) is printed once."""
    from magray.cli import render
    from magray.runtime import Runtime

    runtime = _runtimes.get(id(settings))
    if runtime is None or runtime.settings is not settings:
        runtime = _runtimes[id(settings)] = Runtime(settings, warn=render.warn)
    return runtime


def workspace_roots(settings: Settings, flags: Sequence[Path]) -> tuple[Path, ...]:
    """The allowed roots; the first is the workspace. UsageError for a root that is no folder."""
    return _runtime(settings).workspace_roots(flags)


def tool_context(
    settings: Settings, flags: Sequence[Path], timeout: float | None = None
) -> ToolContext:
    """Where the tools run: roots, per-call timeout, private hosts, the OS sandbox."""
    return _runtime(settings).tool_context(flags, timeout)


def tool_registry(
    settings: Settings, *, mcp: bool = True, only_server: str | None = None
) -> ToolRegistry:
    """Built-in and plugin tools, plus MCP tools when ``mcp`` and ``mcp.enabled`` say so."""
    return _runtime(settings).tool_registry(mcp=mcp, only_server=only_server)


def tool_policy(settings: Settings, mode: Mode) -> Policy:
    """The user's rules and built-in exceptions (policy.toml) under ``mode``."""
    return _runtime(settings).policy(mode)
