"""What `magray run` and `magray tools ...` share: workspace roots, the tool set, the policy.

Roots come from ``--root`` flags, else the ``tools.roots`` setting, else the current
folder. The tool set is the built-ins and plugins, plus the tools of configured MCP
servers (all of them for the agent, only the named server for `tools run mcp__S__T`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from magray.errors import UsageError

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.tools.base import ToolContext
    from magray.tools.policy import Mode, Policy
    from magray.tools.registry import ToolRegistry
    from magray.tools.sandbox import SandboxConfig


def workspace_roots(settings: Settings, flags: Sequence[Path]) -> tuple[Path, ...]:
    """The allowed roots; the first is the workspace. UsageError for a root that is no folder."""
    if flags:
        roots, where = [p.expanduser() for p in flags], "--root"
    else:
        configured = [r for r in settings.get_str("tools.roots").split(os.pathsep) if r.strip()]
        source = settings.sources.get("tools.roots", "default")
        roots = [Path(r.strip()).expanduser() for r in configured]
        where = f"tools.roots (from {source})"
    if not roots:
        return (Path.cwd(),)
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"{where}: {root} is not a folder; name an existing folder.")
    return tuple(roots)


def tool_context(
    settings: Settings, flags: Sequence[Path], timeout: float | None = None
) -> ToolContext:
    """Where the tools run: roots, per-call timeout, private hosts the web tools may reach."""
    from magray.tools.base import ToolContext

    hosts = tuple(
        h.strip() for h in settings.get_str("tools.allow_private_hosts").split(",") if h.strip()
    )
    return ToolContext(
        roots=workspace_roots(settings, flags),
        timeout=settings.get_float("tools.timeout") if timeout is None else timeout,
        allow_private_hosts=hosts,
        sandbox=sandbox_config(settings),
    )


_warned: set[SandboxConfig] = set()


def sandbox_config(settings: Settings) -> SandboxConfig:
    """The ``tools.sandbox`` mode and bwrap program; warns once when commands cannot be confined."""
    from magray.cli import render
    from magray.tools.sandbox import SandboxConfig, SandboxMode, unavailable

    mode = SandboxMode(settings.get_str("tools.sandbox"))
    config = SandboxConfig(mode, settings.get_str("tools.bwrap"))
    why = unavailable(config)
    if why is not None and config not in _warned:
        _warned.add(config)
        render.warn(f"no OS sandbox for commands: {why}; every command will ask for approval.")
    return config


def tool_registry(
    settings: Settings, *, mcp: bool = True, only_server: str | None = None
) -> ToolRegistry:
    """Built-in and plugin tools, plus MCP tools when ``mcp`` and ``mcp.enabled`` say so.

    ``only_server`` limits MCP discovery to that server (one process started, not all).
    """
    from magray.cli import render
    from magray.tools.registry import default_registry

    registry = default_registry(warn=render.warn)
    if mcp and settings.get_bool("mcp.enabled"):
        from magray.tools.mcp import discover, load_servers, mcp_file

        config_dir = settings.paths.config_dir
        if load_servers(mcp_file(config_dir)):
            discover(
                registry,
                config_dir,
                settings.get_float("mcp.list_timeout"),
                only=only_server,
                warn=render.warn,
            )
    return registry


def tool_policy(settings: Settings, mode: Mode) -> Policy:
    """The user's rules and built-in exceptions (policy.toml) under ``mode``."""
    from magray.tools.policy import load_policy, policy_file

    return load_policy(policy_file(settings.paths.config_dir), mode)
