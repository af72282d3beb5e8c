"""Settings: one frozen object, merged from defaults < config.toml < MAGRAY_* env < flags.

Every setting has a dotted key (``memory.vector_dtype``), a type, a default and a
one-line description. The environment variable for a key is ``MAGRAY_`` plus the
key upper-cased with dots as underscores (``MAGRAY_MEMORY_VECTOR_DTYPE``).
``Settings.sources`` tells where each value came from, for ``magray config show``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError
from magray.paths import Paths, resolve_paths

if TYPE_CHECKING:
    from magray.config_sections import (
        EmbedSettings,
        MCPSettings,
        MemorySettings,
        SearchSettings,
        Section,
        ServerSettings,
        ToolsSettings,
        WebSettings,
    )


@dataclass(frozen=True, slots=True)
class Option:
    """One setting's schema."""

    key: str
    default: Any
    kind: type
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


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
        "f32",
        str,
        "Scalar type of the HNSW index (f16 and i8 also keep the store's vectors in f16).",
        choices=("f32", "f16", "i8"),
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
        "server.queue_size",
        256,
        int,
        "Requests that may wait for a worker (503 with Retry-After beyond).",
        minimum=0,
        maximum=1_000_000,
    ),
)

_BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}


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


_KIND_NAMES: dict[type, str] = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
}


def _coerce(option: Option, raw: Any, where: str) -> Any:
    """Turn ``raw`` into the option's type, or raise a ConfigError naming ``where`` (if any)."""
    where = f"{where}: " if where else ""
    value: Any
    try:
        if option.kind is bool:
            if isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and raw.strip().lower() in {"1", "true", "yes", "on"}:
                value = True
            elif isinstance(raw, str) and raw.strip().lower() in {"0", "false", "no", "off"}:
                value = False
            else:
                raise ValueError
        elif option.kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            value = int(raw)
        elif option.kind is float:
            if isinstance(raw, bool):
                raise ValueError
            value = float(raw)
            if not math.isfinite(value):
                raise ConfigError(f"{where}{option.key} must be a finite number (got {raw!r}).")
        else:
            if not isinstance(raw, str):
                raise ValueError
            value = raw.strip()
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(
            f"{where}{option.key} must be {_KIND_NAMES[option.kind]} (got {raw!r})."
        ) from None
    if option.choices and value not in option.choices:
        raise ConfigError(
            f"{where}{option.key} must be one of {', '.join(option.choices)} (got {value!r})."
        )
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"{where}{option.key} must be ≥ {option.minimum} (got {value!r}).")
    if option.maximum is not None and value > option.maximum:
        raise ConfigError(f"{where}{option.key} must be ≤ {option.maximum} (got {value!r}).")
    return value


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = value
    return flat


def read_config_file(path: Path) -> dict[str, Any]:
    """Read ``config.toml`` as flat dotted keys; unknown keys of known sections are errors."""
    from magray.fileio import read_toml

    flat = _flatten(read_toml(path))
    known_sections = {k.split(".")[0] for k in _BY_KEY}
    for key in flat:
        if key.split(".")[0] in known_sections and key not in _BY_KEY:
            raise ConfigError(f"{path}: {unknown_setting(key)}")
    return flat


@dataclass(frozen=True, slots=True)
class Settings:
    """The merged settings of one run.

    Code reads typed sections — ``settings.memory.ttl_interact_hours``,
    ``settings.tools.timeout`` (see :mod:`magray.config_sections`); ``settings[key]`` and the
    ``get_*`` helpers read one value by its dotted key (``magray config get``).
    """

    paths: Paths
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    _sections: dict[str, Section] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def section(self, name: str) -> Section:
        """The typed section ``name`` (made once per settings object)."""
        made = self._sections.get(name)
        if made is None:
            from magray.config_sections import SECTIONS

            made = self._sections[name] = SECTIONS[name].of(self.values)
        return made

    @property
    def embed(self) -> EmbedSettings:
        return self.section("embed")  # type: ignore[return-value]

    @property
    def memory(self) -> MemorySettings:
        return self.section("memory")  # type: ignore[return-value]

    @property
    def search(self) -> SearchSettings:
        return self.section("search")  # type: ignore[return-value]

    @property
    def web(self) -> WebSettings:
        return self.section("web")  # type: ignore[return-value]

    @property
    def tools(self) -> ToolsSettings:
        return self.section("tools")  # type: ignore[return-value]

    @property
    def mcp(self) -> MCPSettings:
        return self.section("mcp")  # type: ignore[return-value]

    @property
    def server(self) -> ServerSettings:
        return self.section("server")  # type: ignore[return-value]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get_str(self, key: str) -> str:
        value = self.values[key]
        assert isinstance(value, str)
        return value

    def get_int(self, key: str) -> int:
        value = self.values[key]
        assert isinstance(value, int)
        return value

    def get_float(self, key: str) -> float:
        value = self.values[key]
        assert isinstance(value, float)
        return value

    def get_bool(self, key: str) -> bool:
        value = self.values[key]
        assert isinstance(value, bool)
        return value

    def with_overrides(self, overrides: Mapping[str, Any], source: str = "flag") -> Settings:
        """A copy with ``overrides`` (None values are ignored) applied on top."""
        values = dict(self.values)
        sources = dict(self.sources)
        for key, raw in overrides.items():
            if raw is None:
                continue
            option = _BY_KEY.get(key)
            if option is None:
                raise ConfigError(unknown_setting(key))
            values[key] = _coerce(option, raw, source)
            sources[key] = source
        return Settings(paths=self.paths, values=values, sources=sources)


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    paths_factory: Callable[[], Paths] = resolve_paths,
) -> Settings:
    """Load settings: defaults < config.toml < environment < ``overrides`` (flags)."""
    env = os.environ if env is None else env
    paths = paths_factory()
    values: dict[str, Any] = {o.key: o.default for o in OPTIONS}
    sources: dict[str, str] = {o.key: "default" for o in OPTIONS}
    for key, raw in read_config_file(paths.config_file).items():
        option = _BY_KEY.get(key)
        if option is None:
            continue  # sections owned by other parts of MAGRAY (e.g. [llm])
        values[key] = _coerce(option, raw, str(paths.config_file))
        sources[key] = str(paths.config_file)
    for option in OPTIONS:
        name = env_var(option.key)
        if name in env:
            values[option.key] = _coerce(option, env[name], name)
            sources[option.key] = name
    settings = Settings(paths=paths, values=values, sources=sources)
    return settings.with_overrides(overrides or {})


def unknown_setting(key: str) -> str:
    """The one-line message for a mistyped key, with the closest known keys."""
    import difflib

    close = difflib.get_close_matches(key, list(_BY_KEY), n=2, cutoff=0.6)
    hint = f" did you mean {' or '.join(close)}?" if close else ""
    return f"unknown setting {key!r};{hint} see `magray config show`."


def unset_setting(path: Path, key: str) -> bool:
    """Remove ``key`` from ``config.toml`` (atomically); False if it was not set there."""
    from magray.fileio import read_toml, write_toml

    option(key)
    data = read_toml(path)
    section, _, name = key.partition(".")
    table = data.get(section)
    if not isinstance(table, dict) or name not in table:
        return False
    del table[name]
    if not table:
        del data[section]
    write_toml(path, data)
    return True


def option(key: str) -> Option:
    """The schema of ``key``; raises ConfigError for an unknown key."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise ConfigError(unknown_setting(key)) from None


def write_setting(path: Path, key: str, raw: str) -> Any:
    """Validate ``raw`` for ``key`` and store it in ``config.toml`` atomically."""
    from magray.fileio import read_toml, write_toml

    opt = option(key)
    value = _coerce(opt, raw, "config set")
    data = read_toml(path)
    section, _, name = key.partition(".")
    table = data.setdefault(section, {})
    table[name] = value
    write_toml(path, data)
    return value
