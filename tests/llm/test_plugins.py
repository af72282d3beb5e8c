"""Provider plugins: real entry points of group magray.providers, built-ins loaded the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from magray.config import load_settings
from magray.errors import ConfigError
from magray.llm import registry
from magray.llm.config import load_llm_config, parse_llm_config
from magray.llm.registry import ENTRY_POINT_GROUP, create_provider, provider_types
from tests.entry_points import Plugins, assert_skipped, logged_warnings

from .helpers import ask, router

ECHO = """
from magray.llm.base import Chunk, Usage


class EchoProvider:
    supports_tools = False
    context_window = 4096

    def __init__(self, config):
        self.name = config.name
        self.model = config.model or "echo-1"

    def stream(self, request):
        yield Chunk(text="echo: " + request.messages[-1].content)
        yield Chunk(usage=Usage(3, 2), finish_reason="stop")

    def count_tokens(self, messages):
        return sum(len(m.content.split()) for m in messages)


def build(config, settings, keys, env):
    return EchoProvider(config)


build.default_model = "echo-1"
not_a_factory = 42
"""
BROKEN = "raise RuntimeError('boom at import')\n"
ECHO_TOML = '[llm]\ndefault = "e"\n[llm.providers.e]\ntype = "echo"\n'


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    monkeypatch.setattr(registry, "_discovered", None)  # restored afterwards: no plugin leaks
    with Plugins(tmp_path / "site", ENTRY_POINT_GROUP) as installed:
        yield installed


def test_builtin_types_come_from_entry_points_or_the_fallback(plugins: Plugins) -> None:
    assert provider_types() == ["anthropic", "local", "openai"]
    assert set(registry.BUILTIN_PROVIDERS) == set(provider_types())


def test_a_plugin_type_is_usable_through_config_and_router(
    plugins: Plugins, magray_home: Path
) -> None:
    plugins.add("magray-echo", {"echo": "magray_echo_plugin:build"}, {"magray_echo_plugin": ECHO})
    assert "echo" in provider_types()
    r = router(magray_home, ECHO_TOML)
    assert r.provider_config().type == "echo"
    done = r.complete(ask("hello"))
    assert (done.text, done.provider, done.model) == ("echo: hello", "e", "echo-1")
    row = next(x for x in r.describe() if x["name"] == "e")
    assert (row["type"], row["model"], row["key"]) == ("echo", "echo-1", "not needed")


def test_an_unknown_type_is_one_sentence_listing_known_types(
    plugins: Plugins, magray_home: Path
) -> None:
    (magray_home / "config.toml").write_text(ECHO_TOML, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_llm_config(load_settings())
    message = str(info.value)
    assert message.endswith(
        "config.toml: llm.providers.e.type is 'echo', not a known provider type (known: "
        "anthropic, local, openai; a plugin adds others, see docs/plugins.md)."
    )
    assert ". " not in message  # one sentence


def test_failing_plugins_are_one_warning_each_and_the_rest_load(
    plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    plugins.add(
        "magray-mixed",
        {
            "broken": "magray_broken_plugin:build",
            "missing": "magray_no_such_module:build",
            "number": "magray_echo_plugin:not_a_factory",
            "openai": "magray_echo_plugin:build",  # claims a built-in type
            "echo": "magray_echo_plugin:build",
        },
        {"magray_echo_plugin": ECHO, "magray_broken_plugin": BROKEN},
    )
    local_openai = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
    cfg = parse_llm_config({"providers": {"e": {"type": "echo"}, "o": local_openai}})
    reasons = {
        "broken": "boom at import",
        "missing": "magray_no_such_module",
        "number": "not a provider factory",
        "openai": "'openai' is already registered",
    }
    assert_skipped(caplog, "provider", reasons)
    assert provider_types() == ["anthropic", "echo", "local", "openai"]
    assert type(create_provider(cfg.get("o"), load_settings(), env={})).__name__ == (
        "OpenAIProvider"
    )  # the built-in kept its type
    assert_skipped(caplog, "provider", reasons)  # read once, not again on every use


def test_an_entry_point_declared_twice_is_loaded_once(
    plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    plugins.add("magray-echo", {"echo": "magray_echo_plugin:build"}, {"magray_echo_plugin": ECHO})
    plugins.add("magray-echo-old", {"echo": "magray_echo_plugin:build"})  # a stale copy
    plugins.add("magray-extras", {"openai": "magray.llm.registry:build_openai"})  # the built-in
    assert provider_types() == ["anthropic", "echo", "local", "openai"]
    assert logged_warnings(caplog) == []


def test_load_plugins_reports_to_the_given_callback(plugins: Plugins) -> None:
    plugins.add("magray-bad", {"broken": "magray_bad:build"}, {"magray_bad": BROKEN})
    said: list[str] = []
    assert registry.load_plugins(warn=said.append) == ["anthropic", "local", "openai"]
    assert len(said) == 1 and said[0].startswith("provider plugin 'broken' was skipped: ")


def test_register_adds_a_type_from_code(plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})

    def factory(*args: Any) -> Any:
        raise AssertionError("not built")

    registry.register("scripted", factory)
    registry.load_plugins()  # re-reading entry points keeps it
    assert "scripted" in provider_types()
    assert parse_llm_config({"providers": {"s": {"type": "scripted"}}}).get("s").type == "scripted"
