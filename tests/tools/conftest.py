"""Fixtures for tool tests: a workspace folder, a context on it, and a temp git repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from magray.tools.base import ToolContext


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "hello.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    (root / "pkg").mkdir()
    (root / "pkg" / "mod.py").write_text("def f():\n    return 1\n", encoding="utf-8")
    return root


@pytest.fixture
def ctx(workspace: Path) -> ToolContext:
    return ToolContext(roots=(workspace,), timeout=10)


def git(repo: Path, *argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def repo(workspace: Path) -> Path:
    git(workspace, "init", "-q", "-b", "main")
    git(workspace, "config", "user.name", "Test")
    git(workspace, "config", "user.email", "test@example.com")
    git(workspace, "config", "commit.gpgsign", "false")
    git(workspace, "add", ".")
    git(workspace, "commit", "-q", "-m", "initial")
    return workspace
