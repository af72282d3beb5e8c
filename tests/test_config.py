"""Settings: load order, validation, sources, and the docs that describe them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from magray.cli.main import app
from magray.config import OPTIONS, load_settings, write_setting
from magray.errors import ConfigError
from magray.paths import resolve_paths

REPO = Path(__file__).resolve().parent.parent


def test_load_order_defaults_file_env_flags(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().sources["search.mode"] == "default"
    (magray_home / "config.toml").write_text('[search]\nmode = "keyword"\nrrf_k = 30\n')
    s = load_settings()
    assert s["search.mode"] == "keyword" and s["search.rrf_k"] == 30.0
    assert s.sources["search.mode"].endswith("config.toml")
    monkeypatch.setenv("MAGRAY_SEARCH_MODE", "vector")
    s = load_settings()
    assert s["search.mode"] == "vector" and s.sources["search.mode"] == "MAGRAY_SEARCH_MODE"
    s = load_settings({"search.mode": "hybrid"})
    assert s["search.mode"] == "hybrid" and s.sources["search.mode"] == "flag"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[memory]\nvector_dtype = "f64"\n', "must be one of auto, f32, f16, i8"),
        ("[embed]\nthreads = -1\n", "must be ≥ 0"),
        ("[embed]\nthreads = 1.5\n", "must be a whole number"),
        ("[search]\nmod = 1\n", "unknown setting 'search.mod'"),
        ("[search\n", "not valid TOML"),
    ],
)
def test_bad_config_file_is_one_clear_error(magray_home: Path, toml: str, message: str) -> None:
    (magray_home / "config.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAGRAY_MEMORY_AUTO_LIFECYCLE", "maybe")
    with pytest.raises(ConfigError, match="MAGRAY_MEMORY_AUTO_LIFECYCLE"):
        load_settings()


def test_unrelated_sections_are_left_to_their_owners(magray_home: Path) -> None:
    (magray_home / "config.toml").write_text('[llm]\ndefault = "local"\n')
    assert load_settings()["search.mode"] == "hybrid"


def test_home_holds_everything(magray_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MAGRAY_MODELS_DIR")
    paths = resolve_paths()
    for p in (paths.config_file, paths.memory_db, paths.models_dir, paths.log_file):
        assert magray_home.resolve() in p.parents


def test_config_set_and_show(magray_home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["config", "set", "memory.vector_dtype", "f16"])
    assert result.exit_code == 0, result.output
    shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
    row = next(r for r in shown["settings"] if r["key"] == "memory.vector_dtype")
    assert row["value"] == "f16" and row["source"].endswith("config.toml")
    bad = runner.invoke(app, ["config", "set", "memory.vector_dtype", "f64"])
    assert bad.exit_code == 1
    assert "must be one of" in bad.stderr
    with pytest.raises(ConfigError):
        write_setting(magray_home / "config.toml", "nope.key", "1")


def test_every_setting_is_documented() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    missing = [o.key for o in OPTIONS if f"`{o.key}`" not in doc]
    assert not missing, f"document these settings in docs/configuration.md: {missing}"


def test_magray_home_that_is_a_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("x")
    monkeypatch.setenv("MAGRAY_HOME", str(afile))
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        resolve_paths()
    result = CliRunner().invoke(app, ["memory", "list"])
    assert result.exit_code == 1 and "is a file, not a folder" in result.stderr


def test_config_show_masks_the_password_of_a_memory_dsn() -> None:
    from magray.config import shown

    assert shown("memory.dsn", "postgresql://ann:s3cr@t@db:5432/m") == (
        "postgresql://ann:***@db:5432/m"
    )
    assert shown("memory.dsn", "host=db user=ann password='a b' dbname=m") == (
        "host=db user=ann password=*** dbname=m"
    )
    assert shown("memory.dsn", "postgresql://db/m") == "postgresql://db/m"
    assert shown("search.mode", "password=x") == "password=x"


def test_config_show_prints_the_vector_type_auto_means_for_the_store(
    magray_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from magray.memory.records import NewRecord
    from magray.memory.service import Memory
    from tests.fakes import HashEmbedder

    runner = CliRunner()

    def row() -> dict[str, object]:
        shown = json.loads(runner.invoke(app, ["config", "show", "--json"]).stdout)
        return next(r for r in shown["settings"] if r["key"] == "memory.vector_dtype")

    assert row() == {**row(), "value": "auto", "source": "default", "effective": "f16"}
    assert not (magray_home / "data" / "memory.db").exists()  # looked at, not created
    settings = load_settings({"memory.vector_dtype": "f32"})
    with Memory(settings, embedder=HashEmbedder()) as memory:
        memory.remember(NewRecord(text="written under f32"))
    assert row()["effective"] == "f32"  # auto keeps the store's type
    monkeypatch.setenv("COLUMNS", "250")  # one line per row
    text = runner.invoke(app, ["config", "show"]).stdout
    assert "'auto' (f32 for this store)" in text
    monkeypatch.setenv("MAGRAY_MEMORY_VECTOR_DTYPE", "i8")
    assert row()["value"] == row()["effective"] == "i8"
    monkeypatch.setenv("MAGRAY_MEMORY_BACKEND", "postgres")
    assert "effective" not in row()  # pgvector's column type is memory.pg_vector_type
