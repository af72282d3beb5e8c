"""The options table: every flat setting's key, type, default, range and one-line help.

A key is dotted (``memory.vector_dtype``); its environment variable is ``MAGRAY_`` plus the
key upper-cased with dots as underscores (``MAGRAY_MEMORY_VECTOR_DTYPE``). The same
:class:`Option` describes the keys of the other TOML tables MAGRAY reads (the ``[llm]``
section, ``mcp.toml``, ``policy.toml``), so one validator (:mod:`magray.config.values`)
checks all of them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from magray.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Option:
    """One setting's schema.

    ``kind`` is bool, int, float, str or list (a list of text, held as a tuple).
    ``minimum``/``maximum`` bound a number inclusively, ``above`` exclusively. A ``required``
    key has no default; a default of None means the key may be left unset.
    """

    key: str
    default: Any
    kind: type
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    required: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("embed.model", "default", str, "Active embedding model (see `magray models list`)."),
    Option("embed.device", "auto", str, "Where to run models.", choices=("auto", "cpu", "cuda")),
    Option(
        "embed.threads",
        0,
        int,
        "Intra-op threads for ONNX Runtime (0 = all cores).",
        minimum=0,
        maximum=1024,
    ),
    Option("embed.batch_size", 32, int, "Texts per embedding batch.", minimum=1, maximum=4096),
    Option(
        "embed.max_length",
        0,
        int,
        "Token limit per text (0 = the model's own).",
        minimum=0,
        maximum=1_000_000,
    ),
    Option(
        "memory.ttl_interact_hours",
        24.0,
        float,
        "TTL of the Interact layer (0 = never expires).",
        minimum=0,
    ),
    Option(
        "memory.ttl_insights_days",
        90.0,
        float,
        "TTL of the Insights layer (0 = never expires).",
        minimum=0,
    ),
    Option(
        "memory.vector_dtype",
        "auto",
        str,
        "Scalar type of the HNSW index (f16 and i8 also keep the store's vectors in f16);"
        " auto: a store keeps the type it has, a new store gets f16.",
        choices=("auto", "f32", "f16", "i8"),
    ),
    Option(
        "memory.add_layer",
        "assets",
        str,
        "Layer of what `memory add` stores when no --layer is given (assets keep it for good).",
        choices=("interact", "insights", "assets"),
    ),
    Option(
        "memory.search_ef",
        0,
        int,
        "HNSW search expansion (0 = chosen from the index size; raise it for more recall).",
        minimum=0,
        maximum=4096,
    ),
    Option(
        "memory.backend",
        "sqlite",
        str,
        "Where memories are stored (see docs/memory.md, Storage backends).",
        choices=("sqlite", "postgres"),
    ),
    Option(
        "memory.dsn",
        "",
        str,
        "Connection string of the postgres backend, e.g. postgresql://user@host/db.",
    ),
    Option(
        "memory.pg_schema",
        "magray",
        str,
        "PostgreSQL schema of the store (a tenant T uses <schema>_T).",
    ),
    Option(
        "memory.pg_vector_type",
        "vector",
        str,
        "Column type of PostgreSQL vectors: vector (float32) or halfvec (float16, half the size).",
        choices=("vector", "halfvec"),
    ),
    Option("memory.lock_timeout", 10.0, float, "Seconds to wait for the writer lock.", minimum=0),
    Option("memory.auto_lifecycle", True, bool, "Run promote + expire automatically on writes."),
    Option(
        "memory.lifecycle_interval_minutes",
        60.0,
        float,
        "Minimum minutes between automatic lifecycle runs.",
        minimum=0,
    ),
    Option(
        "memory.promote_threshold",
        0.6,
        float,
        "Score at or above which a record moves up a layer.",
        minimum=0,
        maximum=1,
    ),
    Option("search.mode", "hybrid", str, "Default recall mode.", ("hybrid", "vector", "keyword")),
    Option(
        "search.fusion",
        "convex",
        str,
        "How hybrid search combines vector and BM25 results (see docs/benchmarks.md).",
        choices=("convex", "rrf"),
    ),
    Option("search.rrf_k", 60.0, float, "Reciprocal-rank-fusion constant.", minimum=1, maximum=1e6),
    Option(
        "search.vector_weight", 1.0, float, "Weight of the vector ranking in fusion.", minimum=0
    ),
    Option("search.keyword_weight", 1.0, float, "Weight of the BM25 ranking in fusion.", minimum=0),
    Option("search.weight_interact", 1.0, float, "Fusion weight of Interact hits.", minimum=0),
    Option("search.weight_insights", 1.0, float, "Fusion weight of Insights hits.", minimum=0),
    Option("search.weight_assets", 1.0, float, "Fusion weight of Assets hits.", minimum=0),
    Option(
        "search.recency_half_life_days",
        0.0,
        float,
        "Recency boost half-life (0 = no recency boost).",
        minimum=0,
    ),
    Option(
        "search.context_weight",
        0.5,
        float,
        "Weight of a hit's best neighbour in the same session, e.g. the turn after a matching"
        " question (0 = off; see docs/memory.md).",
        minimum=0,
        maximum=10,
    ),
    Option(
        "search.session_weight",
        0.6,
        float,
        "Weight of how well a hit's session matches as a whole (0 = off; see docs/memory.md).",
        minimum=0,
        maximum=10,
    ),
    Option(
        "search.time_weight",
        0.2,
        float,
        "Bonus of a conversation turn that mentions a time (yesterday, last week, May…) when"
        " the query asks when (0 = off; see docs/memory.md).",
        minimum=0,
        maximum=10,
    ),
    Option("search.rerank", False, bool, "Rerank hits with the installed cross-encoder."),
    Option("search.reranker", "reranker", str, "Name of the reranker model to use."),
    Option(
        "web.search_url",
        "",
        str,
        "Web search provider URL with {query} (JSON results); empty = web_search is off.",
    ),
    Option(
        "web.search_key_env",
        "",
        str,
        "Environment variable holding the search provider's API key (empty = none).",
    ),
    Option(
        "tools.roots",
        "",
        str,
        "Workspace roots of the agent's tools, separated by the OS path separator "
        "(':' or ';'); the first is the workspace; empty = the current folder.",
    ),
    Option(
        "tools.timeout",
        60.0,
        float,
        "Seconds one tool call may take before it is stopped.",
        minimum=0.1,
    ),
    Option(
        "tools.sandbox",
        "workspace-write",
        str,
        "OS sandbox of commands and git: read-only, workspace-write (roots writable) "
        "or full-access.",
        choices=("read-only", "workspace-write", "full-access"),
    ),
    Option(
        "tools.bwrap",
        "bwrap",
        str,
        "The bubblewrap program that confines commands (a name on PATH or a path).",
    ),
    Option(
        "tools.allow_private_hosts",
        "",
        str,
        "Comma-separated host globs that web tools may reach on loopback/private addresses.",
    ),
    Option("mcp.enabled", True, bool, "Offer the tools of configured MCP servers to the agent."),
    Option(
        "mcp.list_timeout",
        10.0,
        float,
        "Seconds to wait for an MCP server to list its tools when they are discovered.",
        minimum=0.1,
    ),
    Option(
        "server.auth",
        "on",
        str,
        "API keys for `magray serve` (off = loopback clients need no key; never off by default).",
        choices=("on", "off"),
    ),
    Option("server.rate", 50.0, float, "Requests per second per API key.", minimum=0.001),
    Option("server.burst", 100, int, "Requests one API key may send at once.", minimum=1),
    Option(
        "server.max_body_mb", 32.0, float, "Largest request body in MiB (413 above).", minimum=0
    ),
    Option(
        "server.max_concurrency",
        32,
        int,
        "Requests the server works on at once.",
        minimum=1,
        maximum=100_000,
    ),
    Option(
        "server.readers",
        2,
        int,
        "Read-only store handles per tenant, so that searches run side by side"
        " (0 = searches take turns with writes on one handle).",
        minimum=0,
        maximum=64,
    ),
    Option(
        "server.queue_size",
        256,
        int,
        "Requests that may wait for a worker (503 with Retry-After beyond).",
        minimum=0,
        maximum=1_000_000,
    ),
)

BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}

_SECRET_KEYS = frozenset({"memory.dsn"})
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^\s/]*(@)")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)


def shown(key: str, value: Any) -> Any:
    """``value`` of ``key`` fit to print: the password of a connection string masked."""
    if key in _SECRET_KEYS and isinstance(value, str):
        return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\2", value))
    return value


def env_var(key: str) -> str:
    """The environment variable that sets ``key``."""
    return "MAGRAY_" + key.upper().replace(".", "_")


def unknown_setting(key: str) -> str:
    """The one-line message for a mistyped key, with the closest known keys."""
    from magray.config.values import unknown_key

    return unknown_key(key, BY_KEY, "see `magray config show`")


# Keys `config show` lists that are not one value `config set` can write, and their tools.
NOT_FLAT = {
    "llm.providers": "edit its [llm.providers.NAME] tables in config.toml (see docs/llm.md)",
    "mcp.servers": "use `magray mcp add` and `magray mcp remove`",
    "policy.rules": "use `magray policy allow`, `ask`, `deny` and `remove`",
    "policy.disabled_builtins": "edit policy.toml (see docs/configuration.md)",
}


def option(key: str) -> Option:
    """The schema of ``key``; raises ConfigError for an unknown key."""
    try:
        return BY_KEY[key]
    except KeyError:
        if key in NOT_FLAT:
            raise ConfigError(f"{key} is not a single value; {NOT_FLAT[key]}.") from None
        raise ConfigError(unknown_setting(key)) from None
