"""The runtime builds services lazily from one settings object and closes what it made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from magray.agent.assemble import AgentOptions
from magray.errors import UsageError
from magray.memory.records import NewRecord, Query
from magray.runtime import Runtime
from tests.fakes import HashEmbedder


def test_creating_a_runtime_opens_nothing(magray_home: Path) -> None:
    rt = Runtime.load()
    assert not (magray_home / "data").exists()
    assert "memory" not in rt.__dict__
    rt.close()


def test_memory_and_tasks_share_the_home_and_close(magray_home: Path) -> None:
    with Runtime.load(embedder=HashEmbedder()) as rt:
        rt.memory.remember(NewRecord(text="the staging database listens on port 5433"))
        assert rt.memory.recall(Query(text="staging port", k=1))
        rt.tasks.add("write the runbook")
        assert rt.paths.memory_db.exists() and rt.paths.tasks_db.exists()
    assert set(rt.paths.databases()) == {
        "memory",
        "tasks",
        "llm",
        "conversations",
        "audit",
        "embed_cache",
        "audit_chain",
        "server_keys",
    }


def test_workspace_roots_validate(tmp_path: Path) -> None:
    rt = Runtime.load({"tools.roots": str(tmp_path)})
    assert rt.workspace_roots() == (tmp_path,)
    assert rt.workspace_roots([tmp_path / ".."]) == (tmp_path / "..",)
    with pytest.raises(UsageError, match="not a folder"):
        rt.workspace_roots([tmp_path / "missing"])


def test_runtime_import_is_light() -> None:
    import subprocess

    code = "import sys, magray.runtime; print(','.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.strip().split(","))
    assert not loaded & {"numpy", "onnxruntime", "usearch", "llama_cpp", "openai", "typer"}


def test_the_agent_and_the_session_are_made_of_the_runtimes_parts(
    magray_home: Path, tmp_path: Path
) -> None:
    from magray.tools.policy import Mode

    with Runtime.load(embedder=HashEmbedder()) as rt:
        registry = rt.tool_registry(mcp=False)
        ctx = rt.tool_context([tmp_path], timeout=4)
        agent = rt.agent(registry, ctx, rt.policy(Mode(read_only=True)), AgentOptions(max_steps=3))
        assert agent.planner.llm is rt.router and agent.critic.llm is rt.router
        assert agent.planner.registry is registry and agent.planner.max_steps == 3
        assert agent.executor.ctx is ctx and agent.executor.policy.mode.read_only
        session = rt.session(None, k=2)
        assert session.llm is rt.router and session.log is rt.conversations


def test_a_tenants_tools_remember_in_the_tenants_store(magray_home: Path, tmp_path: Path) -> None:
    """The memory tools use the memory of the runtime that made their context, not the home's."""
    from magray.config import load_settings
    from magray.server.tenants import tenant_settings
    from magray.tools.audit import AuditLog
    from magray.tools.invoke import invoke
    from magray.tools.policy import Mode, Policy

    base = load_settings({"memory.auto_lifecycle": False})
    with Runtime(tenant_settings(base, "acme"), embedder=HashEmbedder()) as rt:
        remember = rt.tool_registry(mcp=False).get("memory_remember")
        args = {"text": "acme's invoices go out on the 3rd"}
        yes = Policy(mode=Mode(yes=True))
        made = invoke(remember, args, rt.tool_context([tmp_path]), yes, AuditLog(tmp_path / "a.db"))
        assert rt.memory.get(made.result.data["id"]).text == args["text"]
        assert rt.paths.memory_db.parent == magray_home / "data" / "tenants" / "acme"
    assert not (magray_home / "data" / "memory.db").exists()
