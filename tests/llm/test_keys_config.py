"""Keys file (0600, masked, redacted) and [llm] configuration parsing."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import ConfigError, MissingKeyError
from magray.llm._http import retry_after_seconds
from magray.llm.config import load_llm_config, parse_llm_config
from magray.llm.keys import KeyStore, mask, redact, require_key


def test_keys_file_is_0600_and_masked(magray_home: Path) -> None:
    store = KeyStore(load_settings().paths.keys_file)
    store.set("openai", "sk-proj-abcdefghijklmnop1234")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.list() == {"openai": "sk-…1234"}
    assert store.get("openai") == "sk-proj-abcdefghijklmnop1234"
    assert redact("boom sk-proj-abcdefghijklmnop1234 boom") == "boom sk-…1234 boom"
    store.remove("openai")
    assert store.list() == {}


def test_a_hand_written_entry_that_is_not_text_is_refused_not_dropped(
    magray_home: Path,
) -> None:
    """`keys set` rewrote the file without an entry it did not understand (a table)."""
    store = KeyStore(load_settings().paths.keys_file)
    written = '[openai]\nkey = "sk-precious-1234567890"\n'
    store.path.write_text(written, encoding="utf-8")
    for act in (store.list, lambda: store.set("anthropic", "sk-ant-1234567890")):
        with pytest.raises(ConfigError, match=r"openai must be a quoted key .*not a table"):
            act()
    assert store.path.read_text(encoding="utf-8") == written
    store.path.write_text("openai = 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a number; fix it, or remove it and run"):
        store.get("openai")


def test_missing_key_names_env_var_and_command(magray_home: Path) -> None:
    cfg = parse_llm_config(
        {"providers": {"openai": {"type": "openai", "api_key_env": "OPENAI_API_KEY"}}}
    ).get("openai")
    with pytest.raises(MissingKeyError) as info:
        require_key(cfg, KeyStore(magray_home / "keys.toml"), env={})
    assert "OPENAI_API_KEY" in str(info.value) and "magray keys set openai" in str(info.value)
    KeyStore(magray_home / "keys.toml").set("openai", "sk-fromfile-xyz9")
    assert require_key(cfg, KeyStore(magray_home / "keys.toml"), env={}) == "sk-fromfile-xyz9"
    env = {"OPENAI_API_KEY": "sk-fromenv-abc1"}
    assert require_key(cfg, KeyStore(magray_home / "keys.toml"), env=env) == "sk-fromenv-abc1"


def test_no_config_means_builtin_local(magray_home: Path) -> None:
    cfg = load_llm_config(load_settings())
    assert cfg.default == "local" and cfg.get("local").type == "local"
    assert cfg.chain() == ("local",)


def test_config_parsed(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text(
        '[llm]\ndefault = "oa"\nfallback = ["local"]\ndaily_token_budget = 5\n'
        '[llm.providers.oa]\ntype = "openai"\nmodel = "m"\ntimeout = 3\n'
    )
    cfg = load_llm_config(load_settings())
    assert cfg.chain() == ("oa", "local") and cfg.get("oa").timeout == 3.0
    assert cfg.daily_token_budget == 5


def test_the_local_providers_table_may_name_a_model_only(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text('[llm.providers.local]\nmodel = "local-tiny"\n')
    local = load_llm_config(load_settings()).get("local")
    assert local.type == "local" and local.model == "local-tiny"
    (magray_home / "config.toml").write_text('[llm.providers.other]\nmodel = "local-tiny"\n')
    with pytest.raises(ConfigError, match=r"llm\.providers\.other\.type"):
        load_llm_config(load_settings())


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[llm.providers.x]\ntype = "gpt"\n', "llm.providers.x.type"),
        ('[llm.providers.x]\ntype = "openai"\ntimeout = -1\n', "llm.providers.x.timeout"),
        ('[llm.providers.x]\ntype = "openai"\nmodell = "m"\n', "llm.providers.x.modell"),
        ('[llm]\ndefault = "nope"\n', "llm.default names provider 'nope'"),
    ],
)
def test_invalid_config_names_key_and_file(magray_home: Path, toml: str, needle: str) -> None:
    (magray_home / "config.toml").write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_llm_config(load_settings())
    assert needle in str(info.value) and "config.toml" in str(info.value)


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "12"}) == 12.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert retry_after_seconds({"retry-after": date}, now=lambda: 1445412480.0) == 10.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert mask("short") == "…****"


def test_config_set_get_unset_llm_default_and_fallback(magray_home: Path) -> None:
    from typer.testing import CliRunner

    from magray.cli.main import app

    runner = CliRunner()
    (magray_home / "config.toml").write_text(
        '[llm.providers.work]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    # A provider block alone does not become the default.
    assert runner.invoke(app, ["config", "get", "llm.default"]).stdout.strip() == "local"
    bad = runner.invoke(app, ["config", "set", "llm.default", "nope"])
    assert bad.exit_code == 1 and "configured: local, work" in bad.stderr
    assert runner.invoke(app, ["config", "set", "llm.default", "work"]).exit_code == 0
    assert runner.invoke(app, ["config", "set", "llm.fallback", "local"]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    rows = {r["key"]: r["value"] for r in shown["settings"]}
    assert rows["llm.default"] == "work" and rows["llm.fallback"] == ["local"]
    sources = {r["key"]: r["source"] for r in shown["settings"]}
    config = str(magray_home / "config.toml")
    assert sources["llm.default"] == sources["llm.providers"] == config
    assert sources["llm.daily_token_budget"] == "default"  # not in the file
    assert runner.invoke(app, ["config", "unset", "llm.default"]).exit_code == 0
    assert runner.invoke(app, ["config", "get", "llm.default"]).stdout.strip() == "local"


def test_config_show_of_a_home_without_config_toml_says_default(magray_home: Path) -> None:
    from typer.testing import CliRunner

    from magray.cli.main import app

    shown = json.loads(CliRunner().invoke(app, ["config", "show", "--json"]).stdout)
    llm = {r["key"]: r["source"] for r in shown["settings"] if r["key"].startswith("llm.")}
    assert set(llm.values()) == {"default"} and not (magray_home / "config.toml").exists()


def test_no_llm_table_gives_the_defaults_an_empty_one_gives() -> None:
    assert parse_llm_config({}) == parse_llm_config({"fallback": []})
    cfg = parse_llm_config({})
    assert (cfg.default, cfg.fallback, cfg.daily_token_budget) == ("local", (), 0)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"daily_token_budget": -5},
            "config.toml: llm.daily_token_budget must be ≥ 0 (got -5).",
        ),
        (
            {"daily_cost_budget_usd": float("inf")},
            "config.toml: llm.daily_cost_budget_usd must be a finite number (got inf).",
        ),
        ({"fallback": "local"}, "config.toml: llm.fallback must be a list of text (got 'local')."),
        (
            {"providers": {"x": {"type": "openai", "temperature": 3}}},
            "config.toml: llm.providers.x.temperature must be ≤ 2 (got 3.0).",
        ),
        (
            {"providers": {"x": {"type": "openai", "max_tokens": 1.5}}},
            "config.toml: llm.providers.x.max_tokens must be a whole number (got 1.5).",
        ),
        (
            {"providers": {"x": {"model": "m"}}},
            "config.toml: llm.providers.x.type is missing; add it (a provider type: openai,"
            " anthropic, local or a plugin's).",
        ),
        (
            {"providers": {"x": "openai"}},
            "config.toml: llm.providers.x must be a table, not str; see docs/llm.md for the"
            " [llm] settings.",
        ),
        (
            {"defualt": "local"},
            "config.toml: unknown setting 'llm.defualt'; did you mean llm.default? see"
            " docs/llm.md for the [llm] settings.",
        ),
    ],
)
def test_bad_llm_values_are_one_line_naming_file_and_key(
    table: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_llm_config(table)
    assert str(info.value) == message


def test_pydantic_is_not_needed_to_read_the_llm_section() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from magray.llm.config import parse_llm_config;"
        "parse_llm_config({'providers': {'x': {'type': 'openai', 'timeout': 5}}});"
        "print('pydantic' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
