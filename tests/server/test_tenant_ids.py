"""Tenant B never reaches what tenant A's ids name: A's conversation and A's run are a 404
for B on every route that takes the id, through the API and through the dashboard (which
calls the API with B's key), and no dashboard page shows B anything of A's."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from magray.server.ui.session import csrf_token
from tests.agent.conftest import oa_plan, step
from tests.llm.conftest import Scripted, oa_stream
from tests.server.test_runs import DEADLINE, agent_client, wait_for  # noqa: F401  (the fixture)

SECRET = "qzxv-7731"  # in every text of tenant A: never in an answer to tenant B


def _seed_a(client: TestClient, server: Scripted, key: Any) -> tuple[dict[str, str], str, str]:
    """Tenant A's admin key, a conversation (one answer) and a run waiting for approval."""
    a = key("admin", "tenant-a")
    made = client.post("/v1/memories", json={"text": f"A's note {SECRET}"}, headers=a)
    assert made.status_code == 201, made.text
    server.add(oa_stream([f"A's answer {SECRET}."]))
    asked = client.post("/v1/ask", json={"question": f"A asks {SECRET}"}, headers=a)
    assert asked.status_code == 200, asked.text
    conversation = asked.json()["conversation_id"]
    server.add(oa_plan(step("write", "file_write", {"path": "a.txt", "content": SECRET})))
    started = client.post("/v1/runs", json={"goal": f"A's goal {SECRET}"}, headers=a)
    assert started.status_code == 202, started.text
    run = started.json()["id"]
    wait_for(client, run, a, "waiting_for_approval")
    return a, conversation, run


def _clean(text: str, *ids: str) -> None:
    leaked = [s for s in (SECRET, *ids) if s in text]
    assert not leaked, text[:600]


def test_a_conversation_and_a_run_of_a_are_404_for_b(
    agent_client: TestClient,  # noqa: F811
    server: Scripted,
    key: Any,
) -> None:
    a, conversation, run = _seed_a(agent_client, server, key)
    b = key("admin", "tenant-b")
    asked_llm = len(server.requests)
    for accept in ("application/json", "text/event-stream"):
        r = agent_client.post(
            "/v1/ask",
            json={"question": "go on", "conversation": conversation},
            headers={**b, "accept": accept},
        )
        assert r.status_code == 404 and r.json()["type"] == "/problems/not-found", r.text
        _clean(r.text.replace(conversation, ""), run)  # the 404 names what B sent only
    for method, path, body in (
        ("GET", f"/v1/runs/{run}", None),
        ("GET", f"/v1/runs/{run}/events", None),
        ("POST", f"/v1/runs/{run}/approve", {"approve": True}),
    ):
        r = agent_client.request(method, path, json=body, headers=b)
        assert r.status_code == 404, (path, r.text)
        _clean(r.text.replace(run, ""), conversation)
    assert len(server.requests) == asked_llm  # none of B's tries reached the model

    # A's own ids still work: the 404s were B's, not missing ids (the run, which holds
    # A's one LLM thread while it waits, is answered first)
    assert agent_client.get(f"/v1/runs/{run}", headers=a).json()["waiting_for_approval"]
    agent_client.post(f"/v1/runs/{run}/approve", json={"approve": False}, headers=a)
    wait_for(agent_client, run, a, "finished")
    server.add(oa_stream(["Still A's."]))
    again = agent_client.post(
        "/v1/ask", json={"question": "go on", "conversation": conversation}, headers=a
    )
    assert again.status_code == 200 and again.json()["conversation_id"] == conversation


def test_the_dashboard_shows_b_nothing_of_a(
    agent_client: TestClient,  # noqa: F811
    server: Scripted,
    key: Any,
    magray_home: Path,
) -> None:
    a, conversation, run = _seed_a(agent_client, server, key)
    record = agent_client.get("/v1/memories", headers=a).json()["records"][0]["id"]
    # A's run keeps waiting (and holding A's LLM thread) while B walks the pages
    b_key = key("admin", "tenant-b")["Authorization"].removeprefix("Bearer ")
    signed_in = agent_client.post("/ui/login", data={"key": b_key}, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text
    csrf = csrf_token(b_key)
    ids = (conversation, run, record)

    for path in (
        "/ui/memory",
        "/ui/memory/search?query=note",
        "/ui/agent",
        "/ui/health",
        "/ui/admin",
    ):
        page = agent_client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        _clean(page.text, *ids)
    for path in (f"/ui/memory/{record}", f"/ui/agent/runs/{run}"):
        page = agent_client.get(path)
        assert page.status_code == 404, (path, page.text[:300])
        _clean(page.text.replace(path.rsplit("/", 1)[1], ""), *ids)
    events = agent_client.get(f"/ui/agent/runs/{run}/events")
    assert "event: error" in events.text and "event: plan" not in events.text
    _clean(events.text.replace(run, ""), *ids)
    streamed = agent_client.get(
        "/ui/agent/chat/stream",
        params={"question": "go on", "conversation": conversation, "csrf": csrf},
    )
    assert "event: error" in streamed.text and "no conversation" in streamed.text
    _clean(streamed.text.replace(conversation, ""), *ids)
    for path, form in (
        (f"/ui/agent/runs/{run}/approve", {"approve": "yes"}),
        (f"/ui/memory/{record}/forget", {}),
    ):
        r = agent_client.post(path, data={**form, "csrf": csrf})
        _clean(r.text.replace(path.split("/")[-2], ""), *ids)
    # nothing of A's changed: its record is still there, its run still waits
    assert agent_client.get(f"/v1/memories/{record}", headers=a).status_code == 200
    assert agent_client.get(f"/v1/runs/{run}", headers=a).json()["waiting_for_approval"]
    agent_client.post(f"/v1/runs/{run}/approve", json={"approve": False}, headers=a)
    wait_for(agent_client, run, a, "finished")
    # and B, which only read, has no data (A has)
    listed = {t["name"]: t["has_data"] for t in agent_client.get("/v1/tenants", headers=a).json()}
    assert listed["tenant-a"] and not listed["tenant-b"]


def test_a_waiting_run_holds_up_no_scrape_probe_or_provider_list(
    agent_client: TestClient,  # noqa: F811
    server: Scripted,
    key: Any,
) -> None:
    """A waiting run holds its tenant's one LLM thread until it is answered. ``/metrics``,
    ``/readyz`` and ``/v1/providers`` of that tenant read the breakers from the ledger
    instead of waiting for the thread: before, the scrape dropped the tenant's breakers
    after 5 s and the probe and the listing waited for the approval."""
    a, _, run = _seed_a(agent_client, server, key)
    assert agent_client.get(f"/v1/runs/{run}", headers=a).json()["waiting_for_approval"]
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            scrape = pool.submit(agent_client.get, "/metrics", headers=a).result(timeout=DEADLINE)
            ready = pool.submit(agent_client.get, "/readyz", headers=a).result(timeout=DEADLINE)
            listed = pool.submit(agent_client.get, "/v1/providers", headers=a).result(
                timeout=DEADLINE
            )
        finally:  # answered in any case, so that a request still waiting comes back
            agent_client.post(f"/v1/runs/{run}/approve", json={"approve": False}, headers=a)
    families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    states = {
        s.labels["provider"]: s.value
        for s in families["magray_llm_breaker_state"].samples
        if s.labels["tenant"] == "tenant-a"
    }
    assert states and set(states.values()) == {0.0}, states  # every breaker closed
    checks = {c["name"]: c for c in ready.json()["checks"]}
    assert checks["llm_provider"]["ok"] and "breaker closed" in checks["llm_provider"]["detail"]
    assert listed.status_code == 200 and {r["breaker"] for r in listed.json()} == {"closed"}
    wait_for(agent_client, run, a, "finished")
