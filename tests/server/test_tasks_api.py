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


def test_refusals_name_the_api_parameters_not_cli_options(client: TestClient, key: Any) -> None:
    h = key("writer")
    first = client.post("/v1/tasks", json={"title": "Design"}, headers=h).json()["id"]
    client.post("/v1/tasks", json={"title": "Build", "depends_on": [first]}, headers=h)

    refused = client.delete(f"/v1/tasks/{first}", headers=h)
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "--force" not in detail and "use ?force=true to remove it" in detail
    assert client.delete(f"/v1/tasks/{first}?force=true", headers=h).json()["removed"] is True

    bad = client.post("/v1/tasks", json={"title": "two\nlines"}, headers=h)
    assert bad.status_code == 422
    assert bad.json()["detail"].endswith('put the rest in the notes ("notes").')


def test_cli_options_outside_backticks_become_api_fields() -> None:
    from magray.server.problems import for_api

    assert for_api("pick one; ask with --provider my-llm.2, which runs it.") == (
        'pick one; ask with "provider": "my-llm.2", which runs it.'
    )
    assert for_api("link it with --memory.") == 'link it with "memory".'
    # a command in backticks is left whole: it is advice for whoever runs the server
    assert for_api("corrupt; run `magray llm install --force`.") == (
        "corrupt; run `magray llm install --force`."
    )
