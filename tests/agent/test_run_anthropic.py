"""One agent run through Anthropic's messages protocol (tool_use blocks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import Scripted, an_plan, an_stream, anthropic_config, git, step


def test_anthropic_tool_use_plan(
    server: Scripted, magray_home: Path, repo: Path, make_agent: Any
) -> None:
    anthropic_config(magray_home, server.url)
    server.add(
        an_plan(
            step("w", "file_write", {"path": "todo.md", "content": "- ship it\n"}),
            step("add", "git_add", {"paths": ["todo.md"]}, "w"),
            step("commit", "git_commit", {"message": "Add a todo list"}, "add"),
        ),
        an_stream([json.dumps({"done": True, "answer": "todo.md is committed."})]),
    )
    report = make_agent(repo).run("add a todo list and commit it")
    assert [s.status for s in report.steps] == ["ok", "ok", "ok"]
    assert report.result == "todo.md is committed."
    assert git(repo, "log", "--format=%s", "-1").strip() == "Add a todo list"
    sent = server.requests[0]
    assert [t["name"] for t in sent["tools"]] == ["submit_plan"]
    assert sent["tools"][0]["input_schema"]["required"] == ["steps"]
