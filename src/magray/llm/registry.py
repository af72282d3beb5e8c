"""Provider factories keyed by ``type``; built-ins and plugins register the same way.

A provider type is an entry point of the ``magray.providers`` group: its name is the type
(what ``[llm.providers.X] type = ...`` says) and it names a factory,
``factory(config, settings, keys, env) -> Provider``. MAGRAY's own types (``openai``,
``anthropic``, ``local``) are declared the same way and also loaded from
``BUILTIN_PROVIDERS`` when the installed metadata lacks them, never twice. A plugin that
fails to load, names no callable or claims a type already taken becomes one warning.

Entry points are read on first use, and every backend module is imported only when a
provider of its type is built, so the SDKs and llama.cpp cost nothing to ``magray --help``.
``register`` adds a type from code (it wins over an entry point of the same type).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from magray.errors import ConfigError
from magray.llm.base import Provider
from magray.llm.config import ProviderConfig
from magray.llm.keys import KeyStore, lookup_key, require_key
from magray.plugins import Warn, load_each

if TYPE_CHECKING:
    from magray.config import Settings

Factory = Callable[[ProviderConfig, "Settings", KeyStore, Mapping[str, str] | None], Provider]

ENTRY_POINT_GROUP = "magray.providers"

#: the built-in provider types, by entry-point name (the type): "module:attribute"
BUILTIN_PROVIDERS: dict[str, str] = {
    "openai": "magray.llm.registry:build_openai",
    "anthropic": "magray.llm.registry:build_anthropic",
    "local": "magray.llm.registry:build_local",
}

_registered: dict[str, Factory] = {}  # through register(); kept when plugins are re-read
_discovered: dict[str, Factory] | None = None  # from entry points; None until first use


def register(type_name: str, factory: Factory) -> None:
    """Make ``[llm.providers.X] type = type_name`` build providers with ``factory``."""
    _registered[type_name] = factory


def load_plugins(warn: Warn | None = None) -> list[str]:
    """(Re-)read the ``magray.providers`` entry points, built-ins first; returns the types."""
    _discover(warn)
    return provider_types()


def _discover(warn: Warn | None = None) -> dict[str, Factory]:
    global _discovered
    found: dict[str, Factory] = {}

    def use(type_name: str, factory: Any) -> None:
        if not callable(factory):
            raise TypeError(f"it names a {type(factory).__name__}, not a provider factory")
        if type_name in found:
            raise ValueError(f"provider type {type_name!r} is already registered")
        found[type_name] = factory

    load_each(ENTRY_POINT_GROUP, BUILTIN_PROVIDERS, use, noun="provider", warn=warn)
    _discovered = found
    return found


def _factories() -> dict[str, Factory]:
    discovered = _discovered if _discovered is not None else _discover()
    return {**discovered, **_registered}


def provider_types() -> list[str]:
    """Every provider type a config may name: built-ins, plugins and ``register``ed ones."""
    return sorted(_factories())


def unknown_type(type_name: str, where: str) -> ConfigError:
    """The error for a ``type`` that no built-in or installed plugin provides."""
    return ConfigError(
        f"{where} is {type_name!r}, not a known provider type (known: "
        f"{', '.join(provider_types())}; a plugin adds others, see docs/plugins.md)."
    )


def needs_key(config: ProviderConfig) -> bool:
    """Cloud endpoints need a key; a local OpenAI-compatible server without api_key_env does not."""
    if config.type == "anthropic":
        return True
    if config.type == "openai":
        return bool(config.api_key_env) or not config.base_url
    return False


def default_model(config: ProviderConfig) -> str:
    """The model a provider uses when a request names none (without building it)."""
    if config.type == "local":
        from magray.llm.local_models import DEFAULT_LOCAL, find_local_model

        if config.model_path:
            return config.model or config.model_path.stem
        entry = find_local_model(config.model) if config.model else DEFAULT_LOCAL
        return entry.name if entry is not None else str(config.model)
    if config.model:
        return config.model
    if config.type == "anthropic":
        from magray.llm.anthropic import DEFAULT_MODEL as ANTHROPIC_MODEL

        return ANTHROPIC_MODEL
    if config.type == "openai":
        from magray.llm.openai import DEFAULT_MODEL as OPENAI_MODEL

        return OPENAI_MODEL
    # a plugin's factory may say which model it uses by default
    return str(getattr(_factories().get(config.type), "default_model", ""))


def build_openai(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    """The ``openai`` type: OpenAI or any OpenAI-compatible server (a key unless local)."""
    from magray.llm.openai import OpenAIProvider

    key = require_key(config, keys, env) if needs_key(config) else lookup_key(config, keys, env)
    return OpenAIProvider(config, key)


def build_anthropic(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    """The ``anthropic`` type: Anthropic's Messages API (always needs a key)."""
    from magray.llm.anthropic import AnthropicProvider

    return AnthropicProvider(config, require_key(config, keys, env))


def build_local(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    """The ``local`` type: the embedded llama.cpp GGUF model."""
    from magray.llm.local import LocalProvider  # llama.cpp itself loads on first use

    return LocalProvider(config, settings)


def create_provider(
    config: ProviderConfig,
    settings: Settings,
    keys: KeyStore | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """Build the provider ``config`` describes (its key looked up as documented in keys.py)."""
    factory = _factories().get(config.type)
    if factory is None:
        raise unknown_type(config.type, f"the type of provider {config.name!r}")
    provider = factory(config, settings, keys or KeyStore(settings.paths.keys_file), env)
    if not isinstance(provider, Provider):
        raise ConfigError(
            f"the {config.type!r} provider plugin built a {type(provider).__name__}, "
            "not a magray Provider; report this to the plugin's authors."
        )
    return provider
