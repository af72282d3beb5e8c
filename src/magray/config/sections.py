"""Typed sections of the settings: one frozen dataclass per ``[section]`` of ``config.toml``.

Code reads ``settings.memory.ttl_interact_hours`` or ``settings.tools.timeout`` instead of
looking values up by string key. Each field is one :data:`magray.config.options.OPTIONS` entry
(``<section>.<field>``): its default comes from there (so it is written once) and every value
is checked against that option's type, choices and range when a section is made, so a
section made by hand — ``ToolsSettings(timeout=5)`` for a test, or ``dataclasses.replace``
— is as valid as one the loader made, or raises a one-line :class:`~magray.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from magray.config.options import option
from magray.config.values import coerce
from magray.errors import ConfigError

S = TypeVar("S", bound="Section")


def _default(key: str) -> Any:
    """The default of option ``key`` (the one place defaults are written is ``OPTIONS``)."""
    return option(key).default


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    """Base of the sections: checks each field against its option when made."""

    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            key = f"{self.name}.{f.name}"
            value = coerce(option(key), getattr(self, f.name), "")
            object.__setattr__(self, f.name, value)

    @classmethod
    def of(cls: type[S], values: Mapping[str, Any]) -> S:
        """The section from flat dotted ``values``; keys it lacks take their defaults."""
        prefix = cls.name + "."
        given = {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in given.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """The values by dotted key, as ``config show --json`` prints them."""
        return {f"{self.name}.{f.name}": getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EmbedSettings(Section):
    """``[embed]``: the embedding model and how it runs."""

    name: ClassVar[str] = "embed"
    model: str = _default("embed.model")
    device: str = _default("embed.device")
    threads: int = _default("embed.threads")
    batch_size: int = _default("embed.batch_size")
    max_length: int = _default("embed.max_length")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MemorySettings(Section):
    """``[memory]``: the store, its backend, lifetimes and lifecycle."""

    name: ClassVar[str] = "memory"
    ttl_interact_hours: float = _default("memory.ttl_interact_hours")
    ttl_insights_days: float = _default("memory.ttl_insights_days")
    vector_dtype: str = _default("memory.vector_dtype")
    add_layer: str = _default("memory.add_layer")
    search_ef: int = _default("memory.search_ef")
    backend: str = _default("memory.backend")
    dsn: str = _default("memory.dsn")
    pg_schema: str = _default("memory.pg_schema")
    pg_vector_type: str = _default("memory.pg_vector_type")
    lock_timeout: float = _default("memory.lock_timeout")
    auto_lifecycle: bool = _default("memory.auto_lifecycle")
    lifecycle_interval_minutes: float = _default("memory.lifecycle_interval_minutes")
    promote_threshold: float = _default("memory.promote_threshold")

    def postgres_dsn(self) -> str:
        """The PostgreSQL connection string; ConfigError naming both settings if empty."""
        dsn = self.dsn.strip()
        if not dsn:
            raise ConfigError(
                "memory.backend is postgres but memory.dsn is empty; set it (or"
                " MAGRAY_MEMORY_DSN) to a connection string such as postgresql://user@host/magray."
            )
        return dsn


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SearchSettings(Section):
    """``[search]``: how recall ranks and fuses."""

    name: ClassVar[str] = "search"
    mode: str = _default("search.mode")
    fusion: str = _default("search.fusion")
    rrf_k: float = _default("search.rrf_k")
    vector_weight: float = _default("search.vector_weight")
    keyword_weight: float = _default("search.keyword_weight")
    weight_interact: float = _default("search.weight_interact")
    weight_insights: float = _default("search.weight_insights")
    weight_assets: float = _default("search.weight_assets")
    recency_half_life_days: float = _default("search.recency_half_life_days")
    context_weight: float = _default("search.context_weight")
    session_weight: float = _default("search.session_weight")
    time_weight: float = _default("search.time_weight")
    rerank: bool = _default("search.rerank")
    reranker: str = _default("search.reranker")

    def layer_weight(self, layer: str) -> float:
        """The fusion weight of hits from ``layer`` (interact, insights or assets)."""
        weight: float = getattr(self, f"weight_{layer}")
        return weight


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings(Section):
    """``[web]``: the web search provider of the ``web_search`` tool."""

    name: ClassVar[str] = "web"
    search_url: str = _default("web.search_url")
    search_key_env: str = _default("web.search_key_env")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ToolsSettings(Section):
    """``[tools]``: where the agent's tools run and for how long."""

    name: ClassVar[str] = "tools"
    roots: str = _default("tools.roots")
    timeout: float = _default("tools.timeout")
    sandbox: str = _default("tools.sandbox")
    bwrap: str = _default("tools.bwrap")
    allow_private_hosts: str = _default("tools.allow_private_hosts")

    @property
    def root_paths(self) -> tuple[Path, ...]:
        """``roots`` split on the OS path separator (empty: none configured)."""
        parts = (r.strip() for r in self.roots.split(os.pathsep))
        return tuple(Path(r).expanduser() for r in parts if r)

    @property
    def private_hosts(self) -> tuple[str, ...]:
        """``allow_private_hosts`` split on commas."""
        return tuple(h.strip() for h in self.allow_private_hosts.split(",") if h.strip())


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MCPSettings(Section):
    """``[mcp]``: whether MCP servers' tools are offered (the servers are in mcp.toml)."""

    name: ClassVar[str] = "mcp"
    enabled: bool = _default("mcp.enabled")
    list_timeout: float = _default("mcp.list_timeout")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings(Section):
    """``[server]``: `magray serve`'s authentication and limits."""

    name: ClassVar[str] = "server"
    auth: str = _default("server.auth")
    rate: float = _default("server.rate")
    burst: int = _default("server.burst")
    max_body_mb: float = _default("server.max_body_mb")
    max_concurrency: int = _default("server.max_concurrency")
    queue_size: int = _default("server.queue_size")
    readers: int = _default("server.readers")


#: every section, by name (the part of a key before its first dot)
SECTIONS: dict[str, type[Section]] = {
    s.name: s
    for s in (
        EmbedSettings,
        MemorySettings,
        SearchSettings,
        WebSettings,
        ToolsSettings,
        MCPSettings,
        ServerSettings,
    )
}
