"""`keys set` refuses what an API key never holds: it would fail later, far from the cause."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_errors_cli import fails, run


@pytest.mark.parametrize("key", ["sk-é漢字\n", "sk-abc\x07def\n", "sk-\u200babc\n"])
def test_a_key_with_characters_no_api_key_has(key: str, magray_home: Path) -> None:
    fails(run(["keys", "set", "openai"], input=key), 2, "ASCII", "paste it again")
    assert not (magray_home / "keys.toml").exists()


def test_a_plain_key_is_stored(magray_home: Path) -> None:
    stored = run(["keys", "set", "openai"], input="sk-test-1234567890abcd\n")
    assert stored.exit_code == 0, stored.output
    assert (magray_home / "keys.toml").is_file()


def test_a_key_longer_than_any_api_key_is_refused(magray_home: Path) -> None:
    fails(run(["keys", "set", "openai"], input="k" * 16_385), 2, "16,385 characters")
    assert not (magray_home / "keys.toml").exists()


def test_a_key_for_a_provider_that_is_not_configured_is_kept_with_a_warning(
    magray_home: Path,
) -> None:
    (magray_home / "config.toml").write_text(
        '[llm.providers.openai]\ntype = "openai"\nmodel = "gpt-test"\n', encoding="utf-8"
    )
    typo = run(["keys", "set", "opneai"], input="sk-test-1234567890abcd\n")
    assert typo.exit_code == 0, typo.output
    assert "no provider named 'opneai' is configured" in typo.stderr
    assert "did you mean openai?" in typo.stderr and "[llm.providers.opneai]" in typo.stderr
    assert "opneai" in run(["keys", "list"]).stdout  # kept, for a provider added later
    right = run(["keys", "set", "openai"], input="sk-test-1234567890abcd\n")
    assert right.exit_code == 0 and "warning" not in right.stderr
