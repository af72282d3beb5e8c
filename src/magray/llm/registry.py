"""Provider factories keyed by ``type``: ``openai``, ``anthropic``, ``local``.

Every backend module is imported only when a provider of its type is built, so the SDKs and
llama.cpp cost nothing to ``magray --help``. Plugins add a type with ``register``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from magray.errors import ConfigError
from magray.llm.base import Provider
from magray.llm.config import ProviderConfig
from magray.llm.keys import KeyStore, lookup_key, require_key

if TYPE_CHECKING:
    from magray.config import Settings

Factory = Callable[[ProviderConfig, "Settings", KeyStore, Mapping[str, str] | None], Provider]
_FACTORIES: dict[str, Factory] = {}


def register(type_name: str, factory: Factory) -> None:
    """Make ``[llm.providers.X] type = type_name`` build providers with ``factory``."""
    _FACTORIES[type_name] = factory


def needs_key(config: ProviderConfig) -> bool:
    """Cloud endpoints need a key; a local OpenAI-compatible server without api_key_env does not."""
    if config.type == "anthropic":
        return True
    if config.type == "openai":
        return bool(config.api_key_env) or not config.base_url
    return False


def default_model(config: ProviderConfig) -> str:
    """The model a provider uses when a request names none (without building it)."""
    if config.model:
        return config.model
    if config.type == "local":
        return config.model_path.stem if config.model_path else "gemma-3-270m"
    if config.type == "anthropic":
        from magray.llm.anthropic import DEFAULT_MODEL as ANTHROPIC_MODEL

        return ANTHROPIC_MODEL
    from magray.llm.openai import DEFAULT_MODEL as OPENAI_MODEL

    return OPENAI_MODEL


def _openai(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    from magray.llm.openai import OpenAIProvider

    key = require_key(config, keys, env) if needs_key(config) else lookup_key(config, keys, env)
    return OpenAIProvider(config, key)


def _anthropic(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    from magray.llm.anthropic import AnthropicProvider

    return AnthropicProvider(config, require_key(config, keys, env))


def _local(
    config: ProviderConfig, settings: Settings, keys: KeyStore, env: Mapping[str, str] | None
) -> Provider:
    from magray.llm.local import LocalProvider  # llama.cpp itself loads on first use

    return LocalProvider(config, settings)


register("openai", _openai)
register("anthropic", _anthropic)
register("local", _local)


def create_provider(
    config: ProviderConfig,
    settings: Settings,
    keys: KeyStore | None = None,
    env: Mapping[str, str] | None = None,
) -> Provider:
    """Build the provider ``config`` describes (its key looked up as documented in keys.py)."""
    factory = _FACTORIES.get(config.type)
    if factory is None:
        raise ConfigError(
            f"provider {config.name!r} has unknown type {config.type!r}; "
            f"use one of {', '.join(sorted(_FACTORIES))}."
        )
    return factory(config, settings, keys or KeyStore(settings.paths.keys_file), env)
