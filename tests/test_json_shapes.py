"""One JSON shape per domain value: to_dict() is what the CLI, the server and tools print."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.memory.records import Layer, NewRecord, Query, Source
from magray.runtime import Runtime
from magray.tasks.model import TaskState
from magray.tools import memory_tools, task_tools
from magray.tools.audit import AuditLog
from magray.tools.invoke import invoke
from magray.tools.policy import Mode, Policy
from magray.views import hit_json, record_json, search_json, task_json
from tests.fakes import HashEmbedder

YES = Policy(mode=Mode(yes=True))

RECORD_KEYS = [
    "id",
    "text",
    "layer",
    "kind",
    "tags",
    "project",
    "session",
    "source",
    "created_at",
    "occurred_at",
    "updated_at",
    "last_access_at",
    "access_count",
    "importance",
    "pinned",
    "promotion_score",
    "embedding_model",
]
HIT_KEYS = [
    "id",
    "text",
    "layer",
    "score",
    "kind",
    "tags",
    "project",
    "created_at",
    "occurred_at",
    "access_count",
    "source",
]
TASK_KEYS = [
    "id",
    "title",
    "notes",
    "state",
    "priority",
    "depends_on",
    "memory",
    "created_at",
    "updated_at",
    "done_at",
]


@pytest.fixture
def rt(magray_home: Path) -> Iterator[Runtime]:
    runtime = Runtime.load({"memory.auto_lifecycle": False}, embedder=HashEmbedder())
    yield runtime
    runtime.close()


def test_record_and_hit_have_one_shape_everywhere(rt: Runtime, tmp_path: Path) -> None:
    item = NewRecord(
        text="the staging database listens on port 5433",
        layer=Layer.INSIGHTS,
        tags=("ops",),
        source=Source(uri="/notes/db.md", start=0, end=42, line_start=1, line_end=1),
    )
    made = rt.memory.remember(item)
    assert made.to_dict() == {"id": made.id, "layer": "insights", "created": True}
    record = rt.memory.get(made.id)
    data = record.to_dict()
    assert list(data) == RECORD_KEYS
    assert data["source"] == {
        "uri": "/notes/db.md",
        "start": 0,
        "end": 42,
        "line_start": 1,
        "line_end": 1,
    }
    assert data["created_at"].endswith("Z") and data["layer"] == "insights"
    assert record_json(record) == data

    hits = rt.memory.recall(Query(text="staging database port", k=1, explain=True))
    hit = hits[0].to_dict()
    assert list(hit) == [*HIT_KEYS, "explain"]
    assert hit["source"] == {"uri": "/notes/db.md", "line_start": 1}
    assert hit_json(hits[0]) == hit
    assert search_json("q", hits) == {"query": "q", "hits": [hit]}
    plain = dataclasses.replace(hits[0], explanation=None).to_dict()
    assert list(plain) == HIT_KEYS

    query = Query(text="staging database port", k=1)
    expected = [h.to_dict() for h in rt.memory.recall(query, record_access=False)]
    ctx = rt.tool_context([tmp_path])
    audit = AuditLog(tmp_path / "audit.db")
    recall = memory_tools.tools()[1]
    found = invoke(recall, {"query": query.text, "k": 1}, ctx, YES, audit)
    assert found.result.data == expected


def test_task_tools_print_the_task_shape(rt: Runtime, tmp_path: Path) -> None:
    ctx = rt.tool_context([tmp_path])
    audit = AuditLog(tmp_path / "audit.db")
    add, _listing, update = task_tools.tools()
    made = invoke(add, {"title": "write the runbook"}, ctx, YES, audit).result.data
    assert list(made) == TASK_KEYS
    stored = rt.tasks.resolve(made["id"])
    assert made == stored.to_dict() == task_json(stored)
    done = invoke(update, {"id": made["id"], "state": "done"}, ctx, YES, audit).result.data
    assert done["state"] == TaskState.DONE.value and done["done_at"].endswith("Z")


def test_the_server_documents_the_same_shapes() -> None:
    from magray.agent.session import AskResult, UsedMemory
    from magray.llm.base import Usage
    from magray.memory.ingest.remember import RememberResult
    from magray.server.routes_ask import ASK_JSON_SCHEMA
    from magray.server.schemas import Remembered

    answer = AskResult(
        answer="Port 5433 [1].",
        provider="local",
        model="tiny",
        conversation_id="c1",
        memories=[UsedMemory("r1", Layer.ASSETS, 0.5, "port 5433", None)],
        cited=["r1"],
        usage=Usage(10, 3),
        latency_ms=12.345,
        first_token_ms=None,
        finish_reason="stop",
    )
    data = answer.to_dict()
    assert list(data) == list(ASK_JSON_SCHEMA["properties"])  # type: ignore[call-overload]
    assert data["memories"] == [{"id": "r1", "layer": "assets", "score": 0.5}]
    assert data["usage"] == {"prompt_tokens": 10, "completion_tokens": 3}
    assert data["latency_ms"] == 12.3
    made = RememberResult("r1", Layer.INTERACT, True).to_dict()
    assert Remembered(**made).model_dump() == made
