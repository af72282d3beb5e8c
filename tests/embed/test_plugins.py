"""Embedder plugins: real entry points of group magray.embedders, built-ins loaded the same way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import load_settings
from magray.embed import load_embedder, model_spec, registry
from magray.embed.install import write_manifest
from magray.embed.registry import BUILTIN, ENTRY_POINT_GROUP, all_specs, known_specs
from tests.embed import tiny
from tests.entry_points import Plugins, assert_skipped, logged_warnings

SPECS = """
from magray.embed.registry import ModelSpec

TINY = ModelSpec(
    name="tiny-plugin",
    aliases=("tiny-alias",),
    dim=16,
    pooling="mean",
    max_length=60,
    hub_repo="example/tiny-plugin",
    description="A tiny test model from a plugin.",
)


def family():
    return [
        ModelSpec(name="gte-test", dim=768, pooling="cls"),
        ModelSpec(name="gte-test-reranker", dim=1, kind="reranker", pooling="cls"),
    ]


def uppercase():
    return ModelSpec(name="Shouting", dim=8)


def clash():
    return ModelSpec(name="another", aliases=("default",), dim=8)


def not_specs():
    return "nope"
"""
BROKEN = "raise RuntimeError('boom at import')\n"
BUILTIN_NAMES = [s.name for s in BUILTIN]


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    monkeypatch.setattr(registry, "_known", None)  # restored afterwards: no plugin leaks
    with Plugins(tmp_path / "site", ENTRY_POINT_GROUP) as installed:
        yield installed


def test_builtins_come_from_entry_points_or_the_fallback(plugins: Plugins) -> None:
    assert [s.name for s in all_specs()] == BUILTIN_NAMES
    assert model_spec("default").name == "all-minilm-l6-v2"


def test_plugin_specs_are_listed_and_selectable(
    plugins: Plugins, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins.add(
        "magray-tiny",
        {"tiny": "magray_tiny_specs:TINY", "gte": "magray_tiny_specs:family"},
        {"magray_tiny_specs": SPECS},
    )
    models_dir = tmp_path / "models"
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("MAGRAY_EMBED_MODEL", "tiny-alias")
    assert model_spec("TINY-ALIAS").hub_repo == "example/tiny-plugin"

    result = CliRunner().invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout) if r["kind"] != "llm"}
    assert list(rows) == [*BUILTIN_NAMES, "tiny-plugin", "gte-test", "gte-test-reranker"]
    assert rows["tiny-plugin"]["active"] and not rows["tiny-plugin"]["installed"]
    assert rows["gte-test-reranker"]["kind"] == "reranker"

    folder = tiny.bert_like(models_dir / "tiny-plugin")  # as if `magray models install` ran
    write_manifest(folder, model_spec("tiny-plugin"))
    vectors = load_embedder(load_settings(), cached=False).embed_documents(["the cat sat"])
    assert vectors.shape == (1, 16)


def test_failing_plugins_are_one_warning_each_and_the_rest_load(
    plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    plugins.add(
        "magray-mixed",
        {
            "broken": "magray_bad_specs:TINY",
            "missing": "magray_no_such_module:TINY",
            "wrong": "magray_tiny_specs:not_specs",
            "loud": "magray_tiny_specs:uppercase",
            "clash": "magray_tiny_specs:clash",
            "tiny": "magray_tiny_specs:TINY",
        },
        {"magray_tiny_specs": SPECS, "magray_bad_specs": BROKEN},
    )
    names = [s.name for s in all_specs()]
    reasons = {
        "broken": "boom at import",
        "missing": "magray_no_such_module",
        "wrong": "not a magray ModelSpec",
        "loud": "must be one lower-case word",
        "clash": "'default' is already registered",
    }
    assert_skipped(caplog, "embedder", reasons)
    assert names == [*BUILTIN_NAMES, "tiny-plugin"]
    assert model_spec("default").name == "all-minilm-l6-v2"  # the built-in kept its alias
    assert_skipped(caplog, "embedder", reasons)  # read once, not again on every lookup


def test_an_entry_point_declared_twice_is_loaded_once(
    plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    plugins.add("magray-tiny", {"tiny": "magray_tiny_specs:TINY"}, {"magray_tiny_specs": SPECS})
    plugins.add("magray-tiny-old", {"tiny": "magray_tiny_specs:TINY"})  # a stale copy
    plugins.add("magray-extras", {"builtin": "magray.embed.registry:BUILTIN"})  # the built-ins
    assert [s.name for s in known_specs()] == [*BUILTIN_NAMES, "tiny-plugin"]
    assert logged_warnings(caplog) == []


def test_a_user_model_replaces_a_plugin_model_of_the_same_name(
    plugins: Plugins, tmp_path: Path
) -> None:
    plugins.add("magray-tiny", {"tiny": "magray_tiny_specs:TINY"}, {"magray_tiny_specs": SPECS})
    models_dir = tmp_path / "models"
    folder = tiny.bert_like(tmp_path / "mine")
    registry.register_user_model(models_dir, "tiny-plugin", folder)  # its family: the plugin's
    spec = model_spec("tiny-plugin", models_dir)
    assert (spec.source, spec.path, spec.dim) == ("user", str(folder), 16)
    assert [s.name for s in all_specs(models_dir)].count("tiny-plugin") == 1
