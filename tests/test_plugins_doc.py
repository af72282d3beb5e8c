"""docs/plugins.md stays true: its three example plugins, installed for real, work as described."""

from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from magray.config import load_settings
from magray.embed import registry as embed_registry
from magray.embed.registry import model_spec
from magray.errors import ConfigError
from magray.llm import registry as llm_registry
from magray.llm.base import Message, Request
from magray.llm.config import parse_llm_config
from magray.llm.router import Router
from magray.tools.base import ToolContext
from magray.tools.registry import default_registry
from tests.conftest import REPO
from tests.entry_points import installed_dist

DOC = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")


def fenced(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, re.S)


def example_modules() -> dict[str, str]:
    """Each ``# name.py`` python block, by module name."""
    found = {}
    for block in fenced("python"):
        first = block.splitlines()[0]
        if first.startswith("# ") and first.endswith(".py"):
            found[first[2:-3]] = block
    return found


def example_entry_points() -> dict[str, dict[str, str]]:
    groups: dict[str, dict[str, str]] = {}
    for block in fenced("toml"):
        for group, eps in tomllib.loads(block).get("project", {}).get("entry-points", {}).items():
            groups.setdefault(group, {}).update(eps)
    return groups


def example_llm_table() -> dict[str, Any]:
    block = next(b for b in fenced("toml") if b.startswith("[llm"))
    llm: dict[str, Any] = tomllib.loads(block)["llm"]
    return llm


@pytest.fixture(autouse=True)
def _fresh_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_registry, "_discovered", None)
    monkeypatch.setattr(embed_registry, "_known", None)


def test_every_group_has_an_example() -> None:
    assert set(example_entry_points()) == {"magray.tools", "magray.providers", "magray.embedders"}
    assert set(example_modules()) == {"magray_hello", "magray_echo", "magray_mymodel"}


def test_the_documented_plugins_work_once_installed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    eps, modules = example_entry_points(), example_modules()
    with installed_dist(tmp_path / "site", "magray-doc-examples", eps, modules):
        said: list[str] = []
        hello = default_registry(warn=said.append).get("hello")
        ctx = ToolContext(roots=(tmp_path,), timeout=30, output_cap=64_000)
        assert hello.run(hello.parse({"name": "Ada"}), ctx).output == "hello, Ada"

        router = Router(load_settings(), config=parse_llm_config(example_llm_table()), env={})
        try:
            done = router.complete(Request(messages=(Message("user", "polly"),)))
            assert (done.text, done.provider, done.model) == ("polly", "parrot", "echo-2")
        finally:
            router.close()

        assert model_spec("mine").name == "my-embedder"
    assert said == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_the_documented_error_for_a_missing_plugin() -> None:
    quoted = DOC.split("refused with the known types: `", 1)[1].split("`", 1)[0]
    with pytest.raises(ConfigError) as info:
        parse_llm_config(example_llm_table())
    assert str(info.value) == " ".join(quoted.split())
