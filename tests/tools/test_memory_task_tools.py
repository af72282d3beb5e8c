"""memory_* and task_* tools: round trips through invoke over a real store and task graph."""

from __future__ import annotations

from pathlib import Path

import pytest

from magray.config import load_settings
from magray.errors import DeniedError
from magray.memory.service import Memory
from magray.tasks.graph import TaskGraph
from magray.tools import memory_tools, task_tools
from magray.tools.audit import AuditLog
from magray.tools.base import Risk, ToolContext
from magray.tools.invoke import invoke
from magray.tools.policy import Mode, Policy
from tests.fakes import HashEmbedder

YES = Policy(mode=Mode(yes=True))


def test_memory_tools_round_trip(ctx: ToolContext, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db")
    embedder = HashEmbedder()
    remember, recall, forget = memory_tools.tools(
        lambda: Memory(load_settings({"memory.auto_lifecycle": False}), embedder=embedder)
    )
    assert (remember.risk, recall.risk, forget.risk) == (Risk.WRITE, Risk.READ, Risk.WRITE)
    args = {"text": "the deploy key lives in vault", "layer": "insights", "tags": ["ops"]}
    made = invoke(remember, args, ctx, YES, audit).result.data
    assert made["layer"] == "insights" and made["created"]
    invoke(remember, {"text": "lunch is at noon"}, ctx, YES, audit)
    hits = invoke(recall, {"query": "deploy key vault", "k": 1}, ctx, YES, audit).result.data
    assert [h["id"] for h in hits] == [made["id"]]
    assert hits[0]["tags"] == ["ops"]
    gone = invoke(forget, {"id": made["id"]}, ctx, YES, audit).result.data
    assert gone["id"] == made["id"]
    hits = invoke(recall, {"query": "deploy key vault"}, ctx, YES, audit).result.data
    assert made["id"] not in [h["id"] for h in hits]


def test_memory_writes_ask_and_are_denied_without_anyone_to_ask(
    ctx: ToolContext, tmp_path: Path
) -> None:
    audit = AuditLog(tmp_path / "audit.db")
    remember = memory_tools.tools(lambda: Memory(load_settings(), embedder=HashEmbedder()))[0]
    with pytest.raises(DeniedError, match="needs approval"):
        invoke(remember, {"text": "x"}, ctx, Policy(), audit)
    assert audit.rows()[-1].outcome == "denied"


def test_task_tools_round_trip(ctx: ToolContext, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db")
    db = tmp_path / "tasks.db"
    add, listing, update = task_tools.tools(lambda: TaskGraph(db))
    first = invoke(add, {"title": "write docs", "priority": 1}, ctx, YES, audit).result.data
    second = invoke(
        add, {"title": "release", "depends_on": [first["id"]]}, ctx, YES, audit
    ).result.data
    assert second["depends_on"] == [first["id"]]
    done = invoke(update, {"id": first["id"], "state": "done"}, ctx, YES, audit).result.data
    assert done["state"] == "done"
    todo = invoke(listing, {"state": "todo"}, ctx, Policy(), audit)
    assert [t["title"] for t in todo.result.data] == ["release"]
    assert todo.decision == "allow"
    everything = invoke(listing, {}, ctx, Policy(), audit).result
    assert everything.output.splitlines()[0].startswith(f"{first['id']} [done] p1 write docs")
