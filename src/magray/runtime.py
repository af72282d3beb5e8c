"""The runtime: every service of one MAGRAY process, built once from settings.

The CLI and the HTTP server parse their input, ask the runtime for what they need and
render the result; they never wire services themselves. Each service is created on first
use (so ``magray --help`` or ``magray config show`` never opens a store or loads a model)
and closed by :meth:`Runtime.close` (or the ``with`` block)::

    with Runtime.load() as rt:
        hits = rt.memory.recall(Query(text="staging port"))

What it owns: the settings and paths, the memory (store, indexes, embedder), the LLM router,
the tool registry, the tool policy, the tool audit log, the conversation log and the task
graph; it assembles the agent (:meth:`Runtime.agent`) and a conversation
(:meth:`Runtime.session`) from them. Tools get its settings through the context it makes
(:meth:`Runtime.tool_context`), so nothing below the CLI and the server loads settings
itself. Everything is typed and lazily imported: creating a runtime imports nothing heavy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import UsageError

if TYPE_CHECKING:
    from magray.agent.assemble import AgentOptions
    from magray.agent.conversations import ConversationLog
    from magray.agent.runner import Agent
    from magray.agent.session import Recaller, Session
    from magray.config import Settings
    from magray.embed.base import Embedder
    from magray.llm.router import Router
    from magray.memory.records import Filters
    from magray.memory.service import Memory
    from magray.paths import Paths
    from magray.tasks.graph import TaskGraph
    from magray.tools.audit import AuditLog
    from magray.tools.base import ToolContext
    from magray.tools.policy import Mode, Policy
    from magray.tools.registry import ToolRegistry
    from magray.tools.sandbox import SandboxConfig

Warn = Callable[[str], None]


def check_root(root: Path, where: str) -> None:
    """UsageError naming ``where`` unless ``root`` is an existing folder (a comma, where the
    OS path separator was meant, is pointed out)."""
    if root.is_dir():
        return
    hint = ""
    if "," in str(root) and os.pathsep != ",":
        hint = f" (roots are separated by {os.pathsep!r}, not commas)"
    raise UsageError(f"{where}: {root} is not a folder{hint}; name an existing folder.")


def _log_warning(message: str) -> None:
    import logging

    logging.getLogger("magray").warning("%s", message)


class Runtime:
    """The services of one process. Not thread-safe to *create*; safe to share once made."""

    def __init__(
        self,
        settings: Settings,
        *,
        warn: Warn | None = None,
        embedder: Embedder | None = None,
        tenant: str = "local",
        audit_chain: Path | None = None,
    ) -> None:
        self.settings = settings
        self.warn: Warn = warn or _log_warning
        self._embedder = embedder
        self.tenant = tenant
        self._audit_chain = audit_chain
        self._closers: list[Callable[[], None]] = []

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        warn: Warn | None = None,
        embedder: Embedder | None = None,
    ) -> Runtime:
        """A runtime over the merged settings (defaults < file < env < ``overrides``)."""
        from magray.config import load_settings

        return cls(load_settings(overrides or {}), warn=warn, embedder=embedder)

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every service that was created, newest first."""
        while self._closers:
            self._closers.pop()()

    @property
    def paths(self) -> Paths:
        return self.settings.paths

    # -- memory ----------------------------------------------------------------------------
    @cached_property
    def memory(self) -> Memory:
        """The memory of this runtime, opened on first use and closed with the runtime."""
        memory = self.open_memory()
        self._closers.append(memory.close)
        return memory

    def open_memory(self) -> Memory:
        """A new handle on this runtime's memory (same settings, embedder and warnings) for
        the caller to close; the memory tools open one per call."""
        from magray.memory.service import Memory

        return Memory(self.settings, embedder=self._embedder, warn=self.warn)

    def embedder(self) -> Embedder:
        """The embedder given to the runtime, else the configured model (loaded now)."""
        if self._embedder is not None:
            return self._embedder
        from magray.embed import load_embedder

        return load_embedder(self.settings)

    # -- LLM -------------------------------------------------------------------------------
    @cached_property
    def router(self) -> Router:
        from magray.llm.router import Router

        router = Router(self.settings)
        self._closers.append(router.close)
        return router

    # -- the agent -------------------------------------------------------------------------
    def session(
        self, memory: Recaller | None, *, scope: Filters | None = None, k: int | None = None
    ) -> Session:
        """A conversation over the router and the conversation log, recalling from ``memory``."""
        from magray.agent.assemble import build_session

        return build_session(self, memory, scope=scope, k=k)

    def agent(
        self,
        registry: ToolRegistry,
        context: ToolContext,
        policy: Policy,
        options: AgentOptions | None = None,
    ) -> Agent:
        """The agent: planner and critic over the router, executor over the tools and audit;
        ``options`` say how it runs (:class:`~magray.agent.assemble.AgentOptions`)."""
        from magray.agent.assemble import AgentOptions, build_agent

        return build_agent(self, registry, context, policy, options or AgentOptions())

    # -- conversations and tasks -----------------------------------------------------------
    @cached_property
    def conversations(self) -> ConversationLog:
        from magray.agent.conversations import ConversationLog

        log = ConversationLog(self.paths.conversations_db)
        self._closers.append(log.close)
        return log

    @cached_property
    def tasks(self) -> TaskGraph:
        from magray.tasks.graph import TaskGraph

        graph = TaskGraph(self.paths.tasks_db)
        self._closers.append(graph.close)
        return graph

    # -- tools -----------------------------------------------------------------------------
    @cached_property
    def audit(self) -> AuditLog:
        """The tool audit log; each row also enters the home's hash chain (audit verify)."""
        from magray.observability.audit_chain import AuditChain, chain_file
        from magray.observability.tool_audit import ChainedAuditLog

        chain = AuditChain(self._audit_chain or chain_file(self.paths.data_dir))
        return ChainedAuditLog(self.paths.audit_db, chain, self.tenant)

    def workspace_roots(self, flags: Sequence[Path] = ()) -> tuple[Path, ...]:
        """The tools' allowed roots: ``--root`` flags, else ``tools.roots``, else the cwd.

        The first root is the workspace. UsageError for a root that is no folder.
        """
        if flags:
            roots, where = [p.expanduser() for p in flags], "--root"
        else:
            roots = list(self.settings.tools.root_paths)
            where = f"tools.roots (from {self.settings.sources.get('tools.roots', 'default')})"
        if not roots:
            return (Path.cwd(),)
        for root in roots:
            check_root(root, where)
        return tuple(roots)

    def tool_context(self, flags: Sequence[Path] = (), timeout: float | None = None) -> ToolContext:
        """Where the tools run: roots, per-call timeout, private hosts web tools may reach,
        the OS sandbox, and these settings (the memory, task and web tools read them)."""
        from magray.tools.base import ToolContext

        tools = self.settings.tools
        return ToolContext(
            roots=self.workspace_roots(flags),
            timeout=tools.timeout if timeout is None else timeout,
            allow_private_hosts=tools.private_hosts,
            sandbox=self.sandbox,
            settings=self.settings,
            open_memory=self.open_memory,
        )

    @cached_property
    def sandbox(self) -> SandboxConfig:
        """The OS sandbox of commands (``tools.sandbox``); warns once if it cannot confine."""
        from magray.tools.sandbox import SandboxConfig, SandboxMode, unavailable

        tools = self.settings.tools
        config = SandboxConfig(SandboxMode(tools.sandbox), tools.bwrap)
        why = unavailable(config)
        if why is not None:
            self.warn(f"no OS sandbox for commands: {why}; every command will ask for approval.")
        return config

    def tool_registry(self, *, mcp: bool = True, only_server: str | None = None) -> ToolRegistry:
        """Built-in and plugin tools, plus MCP tools when ``mcp`` and ``mcp.enabled`` say so.

        ``only_server`` limits MCP discovery to that server (one process started, not all).
        """
        from magray.tools.registry import default_registry

        registry = default_registry(warn=self.warn)
        if mcp and self.settings.mcp.enabled:
            from magray.tools.mcp_config import load_servers, mcp_file

            config_dir = self.paths.config_dir
            if load_servers(mcp_file(config_dir)):
                from magray.tools.mcp import discover

                discover(
                    registry,
                    config_dir,
                    self.settings.mcp.list_timeout,
                    only=only_server,
                    warn=self.warn,
                )
        return registry

    def policy(self, mode: Mode) -> Policy:
        """The user's rules and built-in exceptions (policy.toml) under ``mode``."""
        from magray.tools.policy_file import load_policy, policy_file

        return load_policy(policy_file(self.paths.config_dir), mode)
