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


def test_each_surface_names_its_own_remedy() -> None:
    from magray.errors import FORCE, Listing, UsageError, provider_option, see

    error = UsageError("pick one; ask with ", provider_option("my-llm.2"), ", which runs it.")
    assert error.message == "pick one; ask with --provider my-llm.2, which runs it."
    assert error.message_for("api") == 'pick one; ask with "provider": "my-llm.2", which runs it.'
    gone = UsageError("no such memory", see(Listing.MEMORIES))
    assert str(gone) == "no such memory; see `magray memory list`."
    assert gone.message_for("api") == "no such memory; GET /v1/memories lists the memories."
    # a command the API has no request for is dropped there
    tools = UsageError("no tool named 'x'", see("magray tools list", aside=True))
    assert (tools.message, tools.message_for("api")) == (
        "no tool named 'x' (see `magray tools list`).",
        "no tool named 'x'.",
    )
    # a message quoted inside another keeps its surface words
    wrapped = UsageError("items.0: ", *UsageError("use ", FORCE, ".").clause(), "!")
    assert (wrapped.message, wrapped.message_for("api")) == (
        "items.0: use --force!",
        "items.0: use ?force=true!",
    )


def test_the_scan_for_cli_words_in_problems() -> None:
    from tests.server.conftest import cli_words

    assert cli_words("use --force to remove it.", 409)
    assert cli_words("no task 'x'; see `magray tasks list`.", 404)
    assert not cli_words("use ?force=true to remove it.", 409)
    # a value the client sent, quoted back, is the client's words, not an option to use
    assert not cli_words("no conversation '--tmpfs' in this tenant.", 404)
    assert cli_words("a tag never holds a comma (got 'a,b'); give each (--tag a --tag b).", 422)
    assert cli_words("the model's plan failed; plan with another provider (--provider), it's", 422)
    assert not cli_words("damaged; run `magray memory reindex --reembed`.", 500)
