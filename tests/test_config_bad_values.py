"""Setting values no file can hold: refused by the one validator, before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import OPTIONS, load_settings, write_setting
from magray.errors import ConfigError

TEXT_KEYS = [o.key for o in OPTIONS if o.kind is str and not o.choices]
INT_KEYS = [o.key for o in OPTIONS if o.kind is int]


@pytest.mark.parametrize("key", TEXT_KEYS)
def test_text_that_is_not_utf8_is_refused(magray_home: Path, key: str) -> None:
    config = magray_home / "config.toml"
    with pytest.raises(ConfigError, match=f"{key} is not UTF-8 text"):
        write_setting(config, key, "abc\udcff")
    assert not config.exists() or "\\udcff" not in config.read_text()


@pytest.mark.parametrize("key", INT_KEYS)
def test_whole_numbers_past_64_bits_are_refused(magray_home: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=f"{key} must be a whole number of at most 19 digits"):
        write_setting(magray_home / "config.toml", key, "99999999999999999999")


def test_an_environment_value_that_is_not_utf8_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAGRAY_WEB_SEARCH_URL", "http://x/\udcff")
    with pytest.raises(ConfigError, match=r"MAGRAY_WEB_SEARCH_URL: web\.search_url is not UTF-8"):
        load_settings()


@pytest.mark.parametrize(
    ("key", "tool"),
    [
        ("llm.providers", "[llm.providers.NAME]"),
        ("mcp.servers", "magray mcp add"),
        ("policy.rules", "magray policy allow"),
        ("policy.disabled_builtins", "policy.toml"),
    ],
)
def test_a_listed_key_that_is_not_one_value_names_its_tool(
    magray_home: Path, key: str, tool: str
) -> None:
    with pytest.raises(ConfigError, match="is not a single value") as caught:
        write_setting(magray_home / "config.toml", key, "x")
    assert tool in caught.value.message


@pytest.mark.parametrize("variable", ["MAGRAY_HOME", "MAGRAY_MODELS_DIR"])
def test_a_home_or_models_folder_that_is_a_file_or_a_loop_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    from tests.cli.test_errors_cli import fails, run

    loop = tmp_path / "loop-a"
    loop.symlink_to(tmp_path / "loop-b")
    (tmp_path / "loop-b").symlink_to(loop)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setenv(variable, str(loop))
    fails(run(["memory", "list"]), 1, f"{variable}=", "cannot be resolved", "point it at")
    monkeypatch.setenv(variable, str(a_file))
    fails(run(["memory", "list"]), 1, f"{variable}=", "is a file, not a folder")
