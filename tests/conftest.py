"""Shared fixtures: every test gets its own MAGRAY_HOME; models are shared and real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# One installed copy of the real models for the whole suite (`make test` fills it first).
TEST_MODELS_DIR = Path(os.environ.get("MAGRAY_TEST_MODELS_DIR", REPO / ".cache" / "models"))


@pytest.fixture(autouse=True)
def magray_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point MAGRAY_HOME at a fresh temp dir; models come from the shared test dir."""
    home = tmp_path / "magray-home"
    home.mkdir()
    monkeypatch.setenv("MAGRAY_HOME", str(home))
    monkeypatch.setenv("MAGRAY_MODELS_DIR", str(TEST_MODELS_DIR))
    for name in list(os.environ):
        if name.startswith("MAGRAY_") and name not in {
            "MAGRAY_HOME",
            "MAGRAY_MODELS_DIR",
            "MAGRAY_TEST_MODELS_DIR",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    yield home


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model (all-MiniLM-L6-v2, fp32), installed into the shared dir once."""
    from magray.embed import install_model

    return install_model("default", TEST_MODELS_DIR)


@pytest.fixture(scope="session")
def int8_model_dir(default_model_dir: Path) -> Path:
    """The real int8 default model, installed into the shared dir once."""
    from magray.embed import install_model

    return install_model("default-int8", TEST_MODELS_DIR)


@pytest.fixture
def real_embedder(default_model_dir: Path, magray_home: Path) -> Any:
    """The real default embedder (no cache), loaded through the public API."""
    from magray.config import load_settings
    from magray.embed import load_embedder

    return load_embedder(load_settings(), "default", cached=False)
