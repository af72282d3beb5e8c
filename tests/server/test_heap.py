"""The server keeps its long-lived objects out of the garbage collector's full passes while
it serves, and leaves nothing frozen when it stops."""

from __future__ import annotations

import gc
from typing import Any

from starlette.testclient import TestClient

from magray.config import load_settings
from magray.server import heap
from magray.server.app import create_app
from tests.fakes import HashEmbedder


def test_nothing_is_frozen_unless_an_app_serves() -> None:
    gc.unfreeze()
    before = heap.settles
    heap.settle()
    assert gc.get_freeze_count() == 0
    assert heap.settles == before


def test_a_serving_app_freezes_its_tenant_and_readers_and_unfreezes_at_stop(
    magray_home: Any, key: Any
) -> None:
    gc.unfreeze()
    app = create_app(load_settings({"server.readers": 2}), embedder=HashEmbedder())
    headers = key("writer")
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 0  # started
        started = heap.settles
        assert (
            client.post("/v1/memories", json={"text": "a note"}, headers=headers).status_code == 201
        )
        found = client.post("/v1/memories/search", json={"query": "note"}, headers=headers)
        assert found.status_code == 200
        assert found.json()["hits"]
        assert heap.settles >= started + 2  # the tenant, then a reader
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
