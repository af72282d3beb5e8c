"""Shared fixtures: every test gets its own MAGRAY_HOME; models are shared and real."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
