"""/v1/runs: a plan waits for POST /v1/runs/{id}/approve, then runs; events stream in order."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.agent.conftest import oa_plan, oa_verdict, step
from tests.llm.conftest import Scripted
from tests.server.conftest import AppFactory
from tests.server.llm_servers import provider_toml
from tests.server.test_ask import parse_sse

DEADLINE = 120.0


@pytest.fixture
def agent_client(
    server: Scripted,
    repo: Path,
    magray_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_client: AppFactory,
) -> TestClient:
    (magray_home / "config.toml").write_text(provider_toml(server.url), encoding="utf-8")
    monkeypatch.setenv("TEST_KEY", "sk-test-1234567890abcd")
    monkeypatch.setenv("MAGRAY_TOOLS_ROOTS", str(repo))
    monkeypatch.setenv("MAGRAY_MCP_ENABLED", "false")
    return make_client()


def wait_for(client: TestClient, rid: str, h: dict[str, str], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE
    while True:
        data: dict[str, Any] = client.get(f"/v1/runs/{rid}", headers=h).json()
        if data[what]:
            return data
        assert time.monotonic() < deadline, data
        time.sleep(0.05)


def test_run_waits_for_approval_then_acts(
    agent_client: TestClient,
    server: Scripted,
    repo: Path,
    key: Any,
) -> None:
    server.add(
        oa_plan(step("write", "file_write", {"path": "out.txt", "content": "hello\n"})),
        oa_verdict(True, "Wrote out.txt."),
    )
    h = key("admin")
    started = agent_client.post("/v1/runs", json={"goal": "write hello to out.txt"}, headers=h)
    assert started.status_code == 202, started.text
    rid = started.json()["id"]
    waiting = wait_for(agent_client, rid, h, "waiting_for_approval")
    assert [e["event"] for e in waiting["events"]] == ["plan", "approval"]
    assert waiting["events"][0]["data"]["steps"][0]["tool"] == "file_write"
    (preview,) = waiting["events"][0]["data"]["previews"]  # what the approver is asked about
    assert preview["id"] == "write" and preview["cut_lines"] == 0
    assert "+++ b/out.txt" in preview["preview"] and "+hello" in preview["preview"]
    assert not (repo / "out.txt").exists()  # nothing happens before the approval
    ok = agent_client.post(f"/v1/runs/{rid}/approve", json={"approve": True}, headers=h)
    assert ok.json() == {"id": rid, "approved": True}
    streamed = agent_client.get(f"/v1/runs/{rid}/events", headers=h)
    events = parse_sse(streamed.text)
    assert [e[0] for e in events] == ["plan", "approval", "approval", "steps", "result"]
    assert [e[2] for e in events] == ["1", "2", "3", "4", "5"]
    assert events[3][1]["steps"] == [{"id": "write", "tool": "file_write", "status": "ok"}]
    assert events[4][1]["result"] == "Wrote out.txt."
    assert (repo / "out.txt").read_text() == "hello\n"


def test_refused_plan_does_nothing_and_runs_are_per_tenant(
    agent_client: TestClient,
    server: Scripted,
    repo: Path,
    key: Any,
) -> None:
    server.add(oa_plan(step("write", "file_write", {"path": "no.txt", "content": "x"})))
    h = key("admin")
    rid = agent_client.post("/v1/runs", json={"goal": "write no.txt"}, headers=h).json()["id"]
    wait_for(agent_client, rid, h, "waiting_for_approval")
    other = key("admin", "elsewhere")
    hidden = agent_client.get(f"/v1/runs/{rid}", headers=other)
    assert hidden.status_code == 404 and "POST /v1/runs" in hidden.json()["detail"]
    writer = key("writer")
    assert agent_client.post("/v1/runs", json={"goal": "x"}, headers=writer).status_code == 403
    agent_client.post(f"/v1/runs/{rid}/approve", json={"approve": False}, headers=h)
    data = wait_for(agent_client, rid, h, "finished")
    names = [e["event"] for e in data["events"]]
    assert names[-1] == "result" and not (repo / "no.txt").exists()
    assert data["events"][-2] == {
        "event": "approval",
        "data": {"waiting": False, "approved": False},
    }
    assert data["events"][-1]["data"]["approved"] is False
    again = agent_client.post(f"/v1/runs/{rid}/approve", json={"approve": True}, headers=h)
    assert again.status_code == 409 and "not waiting" in again.json()["detail"]
    assert again.json()["type"].endswith("/conflict")


def test_shutdown_refuses_a_waiting_plan(
    server: Scripted, repo: Path, magray_home: Path, monkeypatch: pytest.MonkeyPatch, key: Any
) -> None:
    """Closing the app does not wait ten minutes for an approval that will not come."""
    from magray.config import load_settings
    from magray.server.app import create_app
    from tests.fakes import HashEmbedder

    (magray_home / "config.toml").write_text(provider_toml(server.url), encoding="utf-8")
    monkeypatch.setenv("TEST_KEY", "sk-test-1234567890abcd")
    monkeypatch.setenv("MAGRAY_TOOLS_ROOTS", str(repo))
    monkeypatch.setenv("MAGRAY_MCP_ENABLED", "false")
    server.add(oa_plan(step("write", "file_write", {"path": "late.txt", "content": "x"})))
    h = key("admin")
    with TestClient(create_app(load_settings(), embedder=HashEmbedder())) as client:
        rid = client.post("/v1/runs", json={"goal": "write late.txt"}, headers=h).json()["id"]
        wait_for(client, rid, h, "waiting_for_approval")
    assert not (repo / "late.txt").exists()


def test_a_run_naming_an_unknown_provider_is_refused_before_it_starts(
    agent_client: TestClient, server: Scripted, key: Any
) -> None:
    h = key("admin")
    for provider, status, said in (
        ("nope", 422, "no LLM provider named 'nope'"),
        (" ", 422, "the provider name is empty"),
    ):
        refused = agent_client.post(
            "/v1/runs", json={"goal": "list the files", "provider": provider}, headers=h
        )
        assert refused.status_code == status and said in refused.json()["detail"]
    assert server.requests == []  # nothing was planned


def test_a_step_error_is_in_the_apis_words(
    agent_client: TestClient, server: Scripted, repo: Path, key: Any, tmp_path: Path
) -> None:
    """A step refused for a path outside the workspace roots names the server's
    ``tools.roots`` setting, not the CLI's ``--root`` (the leak check scans every event)."""
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x\n", encoding="utf-8")
    server.add(oa_plan(step("read", "file_read", {"path": str(outside)})))
    h = key("admin")
    rid = agent_client.post("/v1/runs", json={"goal": "read it"}, headers=h).json()["id"]
    data = wait_for(agent_client, rid, h, "finished")
    result = data["events"][-1]
    assert result["event"] == "result", data
    (denied,) = result["data"]["steps"]
    assert denied["status"] == "denied"
    assert "ask the server's operator to add the folder to tools.roots" in denied["error"]
    assert "--root" not in denied["error"]


def test_an_approved_plan_does_not_approve_the_asks_of_a_re_plan(
    agent_client: TestClient,
    server: Scripted,
    repo: Path,
    magray_home: Path,
    key: Any,
) -> None:
    """A re-plan that only reads is not shown for approval, so the policy's asks in it (an
    ``ask`` path rule on a read) are nobody's approval: the first plan's yes is not reused."""
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.txt").write_text("TOPSECRET\n", encoding="utf-8")
    (magray_home / "policy.toml").write_text(
        '[[rules]]\ntool = "file_read"\naction = "ask"\npath = "secrets/**"\n', encoding="utf-8"
    )
    server.add(
        oa_plan(step("write", "file_write", {"path": "out.txt", "content": "hello\n"})),
        oa_verdict(False, reason="read the key too"),
        oa_plan(step("peek", "file_read", {"path": "secrets/key.txt"}), call_id="call_2"),
    )
    h = key("admin")
    rid = agent_client.post("/v1/runs", json={"goal": "write hello"}, headers=h).json()["id"]
    wait_for(agent_client, rid, h, "waiting_for_approval")
    agent_client.post(f"/v1/runs/{rid}/approve", json={"approve": True}, headers=h)
    data = wait_for(agent_client, rid, h, "finished")
    steps = [e["data"]["steps"] for e in data["events"] if e["event"] == "steps"]
    assert steps[-1] == [{"id": "peek", "tool": "file_read", "status": "denied"}]
    assert "TOPSECRET" not in str(data)
