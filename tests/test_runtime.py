"""The runtime builds services lazily from one settings object and closes what it made."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
