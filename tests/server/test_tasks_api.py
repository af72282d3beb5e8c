"""/v1/tasks through the ASGI app: memory links name stored memories."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient


def test_a_task_links_only_stored_memories(client: TestClient, key: Any) -> None:
    h = key("writer")
    missing = client.post("/v1/tasks", json={"title": "Ship", "memory": ["nosuchid"]}, headers=h)
    assert missing.status_code == 404
    assert "no memory with id 'nosuchid'" in missing.json()["detail"]
    assert client.get("/v1/tasks", headers=h).json() == []  # nothing was added

    rid = client.post("/v1/memories", json={"text": "Ship on Friday."}, headers=h).json()["id"]
    made = client.post("/v1/tasks", json={"title": "Ship", "memory": [rid[:6]]}, headers=h)
    assert made.status_code == 201 and made.json()["memory"] == [rid]
    short = client.post("/v1/tasks", json={"title": "Ship", "memory": ["ab"]}, headers=h)
    assert short.status_code == 422 and "at least 4 characters" in short.json()["detail"]
