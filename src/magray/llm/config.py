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

The TOML is checked key by key against ``LLM_OPTIONS`` and ``PROVIDER_OPTIONS`` by the
validator every settings file goes through (:func:`magray.config.read_table`: same types,
ranges and one-line messages naming the file and key) and turned into frozen dataclasses.
``type`` is a type from ``llm/registry.py``: ``openai``, ``anthropic``,
``local``, or one an installed plugin adds (see docs/plugins.md). With no ``[llm]`` section
at all a built-in ``local`` provider (the embedded llama.cpp model) exists and is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.config.options import Option
from magray.config.values import coerce, read_table
from magray.errors import ConfigError, Listing, UnknownProviderError, UsageError, see

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
    prompt_cache_mb: int = 256

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
    # the keys of [llm] the source file sets (for `config show`; not part of the value)
    written: frozenset[str] = field(default=frozenset(), compare=False)

    def get(self, name: str) -> ProviderConfig:
        """The provider called ``name``; UnknownProviderError lists the configured ones."""
        try:
            return self.providers[name]
        except KeyError:
            from magray.llm.local_models import find_local_model

            known = ", ".join(sorted(self.providers)) or "(none)"
            if find_local_model(name) is not None:
                raise UnknownProviderError(
                    f"no LLM provider named {name!r} (configured: {known}); {name!r} is a local"
                    f' model, not a provider: to run it, put type = "local" and model ='
                    f' "{name}" under [llm.providers.local] in config.toml (see docs/llm.md).'
                ) from None
            raise UnknownProviderError(
                f"no LLM provider named {name!r}; configured: {known}",
                see(Listing.PROVIDERS, aside=True),
            ) from None

    def named(self, name: str | None) -> str:
        """``name``, or the default when None; a blank name is a UsageError, not the default."""
        if name is None:
            return self.default
        if not name.strip():
            raise UsageError(
                "the provider name is empty; give one of ",
                Listing.PROVIDERS.named,
                ", or leave it out.",
            )
        return name

    def chain(self, first: str | None = None) -> tuple[str, ...]:
        """``first`` (or the default), then the fallback chain, without repeats."""
        head = self.named(first)
        self.get(head)
        return tuple(dict.fromkeys([head, *self.fallback]))


#: the keys of ``[llm]`` (``providers`` is a table of provider tables, read below)
LLM_OPTIONS: tuple[Option, ...] = (
    Option("default", None, str, "Provider used when none is asked for (`magray llm list`)."),
    Option("fallback", (), list, "Providers tried in order when the default fails."),
    Option(
        "daily_token_budget", 0, int, "Tokens a day across providers (0 = no limit).", minimum=0
    ),
    Option(
        "daily_cost_budget_usd",
        0.0,
        float,
        "US dollars a day across providers (0 = no limit; needs price_per_1k_* on them).",
        minimum=0,
    ),
)

#: the keys of one ``[llm.providers.NAME]`` table
PROVIDER_OPTIONS: tuple[Option, ...] = (
    Option(
        "type", None, str, "A provider type: openai, anthropic, local or a plugin's.", required=True
    ),
    Option("base_url", None, str, "The API's base URL (OpenAI-compatible servers, proxies)."),
    Option("model", None, str, "The model to ask."),
    Option("api_key_env", None, str, "Environment variable holding the API key."),
    Option("timeout", None, float, "Seconds one request may take.", above=0),
    Option("max_tokens", None, int, "Most tokens of one answer.", above=0),
    Option("temperature", None, float, "Sampling temperature.", minimum=0, maximum=2),
    Option("max_retries", 2, int, "Retries of a retryable failure.", minimum=0, maximum=10),
    Option("context_window", None, int, "Tokens the model reads at most.", above=0),
    Option("price_per_1k_prompt", None, float, "US dollars per 1,000 prompt tokens.", minimum=0),
    Option(
        "price_per_1k_completion", None, float, "US dollars per 1,000 answer tokens.", minimum=0
    ),
    Option("model_path", None, str, "A GGUF file of the local provider."),
    Option("threads", 0, int, "CPU threads of the local provider (0 = all cores).", minimum=0),
    Option("n_ctx", None, int, "Context size of the local provider.", above=0),
    Option(
        "prompt_cache_mb",
        256,
        int,
        "Disk for the local provider's saved prompt prefixes, in MiB (0 = none saved).",
        minimum=0,
    ),
)

_SEE = "see docs/llm.md for the [llm] settings"


def parse_llm_config(table: dict[str, Any], source: str = "config.toml") -> LLMConfig:
    """Validate an ``[llm]`` table (as read from TOML); ConfigError names the key and file."""
    top = read_table(
        table, LLM_OPTIONS, where=source, prefix="llm", see=_SEE, subtables=("providers",)
    )
    raw_providers = table.get("providers", {})
    if not isinstance(raw_providers, dict):
        raise ConfigError(
            f"{source}: llm.providers must be a table of [llm.providers.NAME] tables; {_SEE}."
        )
    from magray.llm.registry import provider_types, unknown_type  # it imports this module

    known_types = provider_types()
    providers: dict[str, ProviderConfig] = {}
    for name, raw in raw_providers.items():
        if name == "local" and isinstance(raw, dict) and "type" not in raw:
            raw = {**raw, "type": "local"}  # the built-in provider's table may name a model only
        p = read_table(
            raw, PROVIDER_OPTIONS, where=source, prefix=f"llm.providers.{name}", see=_SEE
        )
        if p["type"] not in known_types:
            raise unknown_type(p["type"], f"{source}: llm.providers.{name}.type")
        default_timeout = DEFAULT_LOCAL_TIMEOUT if p["type"] == "local" else DEFAULT_TIMEOUT
        model_path = p.pop("model_path")
        providers[name] = ProviderConfig(
            name=name,
            **{**p, "timeout": p["timeout"] or default_timeout},
            model_path=Path(model_path).expanduser() if model_path else None,
        )
    if "local" not in providers:
        providers["local"] = BUILTIN_LOCAL
    # A provider block alone does not take over: the default is named, else the built-in
    # local model.
    default = top["default"] or "local"
    for key, name in [("default", default)] + [("fallback", n) for n in top["fallback"]]:
        if name not in providers:
            known = ", ".join(sorted(providers))
            raise ConfigError(
                f"{source}: llm.{key} names provider {name!r}, which is not configured "
                f"(configured: {known})."
            )
    return LLMConfig(
        default=default,
        fallback=top["fallback"],
        daily_token_budget=top["daily_token_budget"],
        daily_cost_budget_usd=top["daily_cost_budget_usd"],
        providers=providers,
        source=source,
        written=frozenset(table),
    )


def load_llm_config(settings: Settings) -> LLMConfig:
    """Read ``[llm]`` from the user's ``config.toml`` (built-in ``local`` when absent)."""
    path = settings.paths.config_file
    from magray.fileio import read_toml

    table = read_toml(path).get("llm", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: llm must be a table ([llm]).")
    return parse_llm_config(table, str(path))


#: the ``[llm]`` keys ``magray config set`` / ``unset`` write
LLM_SETTINGS = tuple(f"llm.{o.key}" for o in LLM_OPTIONS)


def llm_rows(config: LLMConfig) -> list[dict[str, Any]]:
    """The ``[llm]`` section as ``config show`` rows (key, value, source, help); a key the
    file does not set comes from ``default``."""

    def source(key: str) -> str:
        return config.source if key in config.written else "default"

    rows: list[dict[str, Any]] = [
        {
            "key": f"llm.{o.key}",
            "value": list(value) if isinstance(value, tuple) else value,
            "source": source(o.key),
            "help": o.help,
        }
        for o in LLM_OPTIONS
        for value in [getattr(config, o.key)]
    ]
    rows.append(
        {
            "key": "llm.providers",
            "value": sorted(config.providers),
            "source": source("providers"),
            "help": "Configured providers ([llm.providers.NAME]; `local` is built in).",
        }
    )
    return rows


def write_llm_setting(path: Path, key: str, raw: str | None) -> Any:
    """Set (or with ``raw`` None remove) one of :data:`LLM_SETTINGS` in config.toml.

    ``llm.fallback`` takes comma-separated names. The value is checked like any setting and
    the new ``[llm]`` table like any load before the file is replaced, so a name that is not
    a configured provider is refused with the list of those that are.
    """
    from magray.fileio import locked

    with locked(path):  # another process may be changing config.toml too
        return _write_llm_setting(path, key, raw)


def _write_llm_setting(path: Path, key: str, raw: str | None) -> Any:
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
        opt = next(o for o in LLM_OPTIONS if o.key == name)
        value = coerce(opt, raw, "config set", key)
        if name == "default" and not value:  # read back as "local": say so instead
            raise ConfigError(
                "config set: llm.default is empty; give a provider of `magray llm list`, or"
                " run `magray config unset llm.default` for the built-in local one."
            )
        table[name] = value
    parse_llm_config(table, f"config set {key}")  # refuses unknown providers
    if not table:
        del data["llm"]
    write_toml(path, data)
    return value
