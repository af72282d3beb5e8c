"""Agent fixtures: scripted LLM servers on loopback (from tests/llm) and a temp git repository."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from magray.cli.main import app
from tests.llm.conftest import Reply, Scripted, an_stream, oa_stream, server  # noqa: F401


def git(repo: Path, *argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "notes.txt").write_text("one\ntwo\nthree\n", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


def run(args: Sequence[str]) -> Result:
    """``magray run ARGS`` in process; an error other than an exit is raised, not hidden."""
    result = CliRunner().invoke(app, ["run", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def step(sid: str, tool: str, args: dict[str, Any], *deps: str, why: str = "") -> dict[str, Any]:
    return {"id": sid, "tool": tool, "args": args, "depends_on": list(deps), "why": why}


def oa_plan(*steps: dict[str, Any], call_id: str = "call_1") -> Reply:
    """An OpenAI streamed answer calling submit_plan with ``steps`` (arguments in two parts)."""
    text = json.dumps({"steps": list(steps)})
    half = len(text) // 2
    deltas = [
        {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": "submit_plan", "arguments": ""},
        },
        {"index": 0, "function": {"arguments": text[:half]}},
        {"index": 0, "function": {"arguments": text[half:]}},
    ]
    return oa_stream([], tool_calls=deltas)


def oa_verdict(done: bool, answer: str = "", reason: str = "") -> Reply:
    return oa_stream([json.dumps({"done": done, "answer": answer, "reason": reason})])


def an_plan(*steps: dict[str, Any]) -> Reply:
    text = json.dumps({"steps": list(steps)})
    return an_stream(["Planning."], tool=("tu_1", "submit_plan", [text[:10], text[10:]]))


def openai_config(home: Path, url: str) -> None:
    (home / "config.toml").write_text(
        '[llm]\ndefault = "oa"\n[llm.providers.oa]\ntype = "openai"\n'
        f'base_url = "{url}/v1"\nmodel = "gpt-test"\napi_key_env = "TEST_KEY"\n'
        "timeout = 5\nmax_retries = 0\n",
        encoding="utf-8",
    )


def anthropic_config(home: Path, url: str) -> None:
    (home / "config.toml").write_text(
        '[llm]\ndefault = "claude"\n[llm.providers.claude]\ntype = "anthropic"\n'
        f'base_url = "{url}"\nmodel = "claude-test"\napi_key_env = "TEST_KEY"\n'
        "timeout = 5\nmax_retries = 0\n",
        encoding="utf-8",
    )


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_KEY", "sk-test-1234567890abcd")


class Remembered:
    """A stand-in for the memory service that keeps what it was asked to remember."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def remember(self, item: Any) -> None:
        self.items.append(item)


@pytest.fixture
def make_agent(tmp_path: Path) -> Any:
    """Builds an Agent over the configured router with a real policy and audit log."""
    from magray.agent.critic import Critic
    from magray.agent.executor import Executor
    from magray.agent.planner import Planner
    from magray.agent.runner import Agent
    from magray.config import load_settings
    from magray.llm.router import Router
    from magray.tools.audit import AuditLog
    from magray.tools.base import ToolContext
    from magray.tools.policy import Mode, Policy
    from magray.tools.registry import default_registry

    routers: list[Router] = []

    def build(root: Path, *, yes: bool = True, rules: tuple[Any, ...] = (), **kw: Any) -> Agent:
        router = Router(load_settings(), sleep=lambda s: None)
        routers.append(router)
        registry = default_registry()
        executor = Executor(
            registry,
            ToolContext(roots=(root,), timeout=10),
            Policy(rules=rules, mode=Mode(yes=yes)),
            AuditLog(tmp_path / "audit.db"),
        )
        return Agent(Planner(router, registry), executor, Critic(router), **kw)

    yield build
    for r in routers:
        r.close()
