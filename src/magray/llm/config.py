"""The ``[llm]`` section of ``config.toml``: providers, the default, the fallback chain, budgets.

```toml
[llm]
default = "openai"             # which provider answers when none is asked for
fallback = ["ollama", "local"] # tried in order when the default fails (retryable errors)
daily_token_budget = 200000    # 0 = no limit
daily_cost_budget_usd = 2.0    # 0 = no limit (needs price_per_1k_* on the providers)

[llm.providers.openai]
type = "openai"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
```

The TOML is validated with pydantic here, at the boundary, and turned into frozen
dataclasses. ``type`` is a type from ``llm/registry.py``: ``openai``, ``anthropic``,
``local``, or one an installed plugin adds (see docs/plugins.md). With no ``[llm]`` section
at all a built-in ``local`` provider (the embedded llama.cpp model) exists and is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError, UnknownProviderError

if TYPE_CHECKING:
    from magray.config import Settings

DEFAULT_TIMEOUT = 60.0
DEFAULT_LOCAL_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One configured provider (``[llm.providers.NAME]``)."""

    name: str
    type: str
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_tokens: int | None = None
    temperature: float | None = None
    max_retries: int = 2
    context_window: int | None = None
    price_per_1k_prompt: float | None = None
    price_per_1k_completion: float | None = None
    model_path: Path | None = None
    threads: int = 0
    n_ctx: int | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for a call of that size (0 when no prices are configured)."""
        return (
            prompt_tokens * (self.price_per_1k_prompt or 0.0)
            + completion_tokens * (self.price_per_1k_completion or 0.0)
        ) / 1000.0


BUILTIN_LOCAL = ProviderConfig(name="local", type="local", timeout=DEFAULT_LOCAL_TIMEOUT)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """The whole ``[llm]`` section, validated."""

    default: str
    fallback: tuple[str, ...] = ()
    daily_token_budget: int = 0
    daily_cost_budget_usd: float = 0.0
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    source: str = "built-in"

    def get(self, name: str) -> ProviderConfig:
        """The provider called ``name``; UnknownProviderError lists the configured ones."""
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "(none)"
            raise UnknownProviderError(
                f"no LLM provider named {name!r}; configured: {known} (see `magray llm list`)."
            ) from None

    def chain(self, first: str | None = None) -> tuple[str, ...]:
        """``first`` (or the default), then the fallback chain, without repeats."""
        head = first or self.default
        self.get(head)
        return tuple(dict.fromkeys([head, *self.fallback]))


@dataclass(frozen=True, slots=True)
class _NoTable:
    """What validating an empty ``[llm]`` table gives (checked in tests/llm)."""

    default: str | None = None
    fallback: tuple[str, ...] = ()
    daily_token_budget: int = 0
    daily_cost_budget_usd: float = 0.0
    providers: dict[str, Any] = field(default_factory=dict)


_NO_LLM_TABLE = _NoTable()


def _location(error: Any) -> str:
    parts = [str(p) for p in error.get("loc", ())]
    return "llm." + ".".join(parts) if parts else "llm"


def parse_llm_config(table: dict[str, Any], source: str = "config.toml") -> LLMConfig:
    """Validate an ``[llm]`` table (as read from TOML); ConfigError names the key and file."""
    raw: Any = _NO_LLM_TABLE  # no [llm] table: the defaults, without importing pydantic
    if table:
        from pydantic import ValidationError

        from magray.llm.config_schema import LLMModel

        try:
            raw = LLMModel.model_validate(table)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConfigError(
                f"{source}: {_location(first)} is invalid ({first['msg'].lower()}); "
                "see docs/llm.md for the [llm] settings."
            ) from None
    from magray.llm.registry import provider_types, unknown_type  # it imports this module

    known_types = provider_types()
    providers: dict[str, ProviderConfig] = {}
    for name, p in raw.providers.items():
        if p.type not in known_types:
            raise unknown_type(p.type, f"{source}: llm.providers.{name}.type")
        if p.type == "local":
            timeout = p.timeout or DEFAULT_LOCAL_TIMEOUT
        else:
            timeout = p.timeout or DEFAULT_TIMEOUT
        providers[name] = ProviderConfig(
            name=name,
            type=p.type,
            model=p.model,
            base_url=p.base_url,
            api_key_env=p.api_key_env,
            timeout=timeout,
            max_tokens=p.max_tokens,
            temperature=p.temperature,
            max_retries=p.max_retries,
            context_window=p.context_window,
            price_per_1k_prompt=p.price_per_1k_prompt,
            price_per_1k_completion=p.price_per_1k_completion,
            model_path=Path(p.model_path).expanduser() if p.model_path else None,
            threads=p.threads,
            n_ctx=p.n_ctx,
        )
    if "local" not in providers:
        providers["local"] = BUILTIN_LOCAL
    # A provider block alone does not take over: the default is named, else the built-in
    # local model.
    default = raw.default or "local"
    for key, name in [("default", default)] + [("fallback", n) for n in raw.fallback]:
        if name not in providers:
            known = ", ".join(sorted(providers))
            raise ConfigError(
                f"{source}: llm.{key} names provider {name!r}, which is not configured "
                f"(configured: {known})."
            )
    return LLMConfig(
        default=default,
        fallback=tuple(raw.fallback),
        daily_token_budget=raw.daily_token_budget,
        daily_cost_budget_usd=raw.daily_cost_budget_usd,
        providers=providers,
        source=source,
    )


def load_llm_config(settings: Settings) -> LLMConfig:
    """Read ``[llm]`` from the user's ``config.toml`` (built-in ``local`` when absent)."""
    path = settings.paths.config_file
    from magray.fileio import read_toml

    table = read_toml(path).get("llm", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: llm must be a table ([llm]).")
    return parse_llm_config(table, str(path))


LLM_SETTINGS = ("llm.default", "llm.fallback")


def llm_rows(config: LLMConfig) -> list[dict[str, Any]]:
    """The ``[llm]`` choices as ``config show`` rows (key, value, source, help)."""
    return [
        {
            "key": "llm.default",
            "value": config.default,
            "source": config.source,
            "help": "Provider used when none is asked for (`magray llm list`).",
        },
        {
            "key": "llm.fallback",
            "value": list(config.fallback),
            "source": config.source,
            "help": "Providers tried in order when the default fails.",
        },
        {
            "key": "llm.providers",
            "value": sorted(config.providers),
            "source": config.source,
            "help": "Configured providers ([llm.providers.NAME]; `local` is built in).",
        },
    ]


def write_llm_setting(path: Path, key: str, raw: str | None) -> Any:
    """Set (or with ``raw`` None remove) ``llm.default`` / ``llm.fallback`` in config.toml.

    The new ``[llm]`` table is validated like any load before the file is replaced, so a
    name that is not a configured provider is refused with the list of those that are.
    """
    from magray.fileio import read_toml, write_toml

    data = read_toml(path)
    table = data.setdefault("llm", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: llm must be a table ([llm]).")
    name = key.partition(".")[2]
    value: Any = None
    if raw is None:
        table.pop(name, None)
    elif name == "fallback":
        value = [n.strip() for n in raw.split(",") if n.strip()]
        table[name] = value
    else:
        value = raw.strip()
        table[name] = value
    parse_llm_config(table, f"config set {key}")  # refuses unknown providers
    if not table:
        del data["llm"]
    write_toml(path, data)
    return value
