"""The backend contract: fixtures every memory backend runs the same tests with.

A new backend adds its name to ``BACKENDS`` (and whatever its ``open`` needs, e.g. a DSN
from the environment, in ``_settings``); the tests themselves do not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from magray.config import Settings, load_settings
from magray.memory.backends import Backend, backend_kind
from magray.memory.backends.base import InsertResult
from magray.memory.records import NewRecord
from tests.fakes import HashEmbedder

BACKENDS = ["sqlite", "postgres"]
NOW = 1_700_000_000.0

Insert = Callable[..., list[InsertResult]]


def _settings(name: str, request: pytest.FixtureRequest) -> Settings:
    if name == "postgres":
        # The session's bundled PostgreSQL (tests/postgres_server.py), a fresh schema each.
        dsn = request.getfixturevalue("postgres_dsn")
        schema = request.getfixturevalue("postgres_schema")
        return load_settings(
            {"memory.backend": name, "memory.dsn": dsn, "memory.pg_schema": schema}
        )
    return load_settings({"memory.backend": name})


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend_name: str, magray_home: Path, request: pytest.FixtureRequest) -> Settings:
    return _settings(backend_name, request)


@pytest.fixture
def backend(settings: Settings) -> Iterator[Backend]:
    opened = backend_kind(settings.get_str("memory.backend")).open(settings)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder(dim=32)


def vector(embedder: HashEmbedder, text: str) -> bytes:
    return np.asarray(embedder.embed_documents([text])[0], dtype="<f4").tobytes()


@pytest.fixture
def insert(backend: Backend, embedder: HashEmbedder) -> Insert:
    """Insert ``NewRecord``s (embedded with the hash embedder) at ``now``."""

    def run(items: Sequence[NewRecord], now: float = NOW) -> list[InsertResult]:
        pairs = [(item, vector(embedder, item.text)) for item in items]
        return backend.insert(pairs, model_id=embedder.model_id, dim=embedder.dim, now=now)

    return run
