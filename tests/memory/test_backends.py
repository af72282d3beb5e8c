"""The backend registry: names, lazy loading, and clear errors for what cannot load."""

from __future__ import annotations

import sys

import pytest

from magray.config import load_settings
from magray.errors import ConfigError
from magray.memory import backends
from magray.memory.backends import Backend, backend_kind, open_backend, register


def test_sqlite_is_built_in_and_opens_from_settings() -> None:
    assert {"sqlite", "postgres"} <= set(backends.names())
    backend = open_backend(load_settings())
    try:
        assert isinstance(backend, Backend)
        assert backend.name == "sqlite" and backend.location.endswith("memory.db")
    finally:
        backend.close()


def test_unknown_names_and_missing_modules_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown; choose one of"):
        backend_kind("nosuch")
    register("broken", "magray.memory.backends.not_a_module:KIND")
    try:
        with pytest.raises(ConfigError, match=r"pip install 'magray\[broken\]'"):
            backend_kind("broken")
    finally:
        backends._REGISTRY.pop("broken", None)
    with pytest.raises(ConfigError, match=r"memory\.backend must be one of"):
        load_settings({"memory.backend": "nosuch"})


def test_opening_the_default_backend_leaves_optional_drivers_unimported() -> None:
    # A fresh interpreter: other tests of this session import psycopg on purpose.
    import subprocess

    code = (
        "import sys; from magray.config import load_settings;"
        " from magray.memory.backends import open_backend;"
        " open_backend(load_settings()).close(); print('psycopg' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_registered_kind_object_is_used_as_is() -> None:
    kind = backend_kind("sqlite")
    register("alias", kind)
    try:
        assert backend_kind("alias") is kind
    finally:
        backends._REGISTRY.pop("alias", None)
        backends._LOADED.pop("alias", None)
