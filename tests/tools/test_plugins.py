"""Tool plugins: entry points of group magray.tools, built-ins loaded the same way."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult
from magray.tools.registry import ENTRY_POINT_GROUP, default_registry

BUILTIN_NAMES = {
    "file_read", "file_write", "file_edit", "file_list", "file_glob", "file_grep", "file_move",
    "file_delete", "git_status", "git_diff", "git_log", "git_show", "git_add", "git_commit",
    "git_branch", "git_checkout", "shell_exec", "web_fetch", "web_search", "memory_remember",
    "memory_recall", "memory_forget", "task_add", "task_list", "task_update",
}  # fmt: skip


class EchoArgs(ToolArgs):
    text: str


class Echo(Tool[EchoArgs]):
    name = "echo_plugin"
    description = "Echo the text back."
    risk = Risk.READ
    Args = EchoArgs

    def run(self, args: EchoArgs, ctx: ToolContext) -> ToolResult:
        return ToolResult(ok=True, output=args.text)


def make_echo() -> Tool[Any]:
    return Echo()


def broken() -> Any:
    raise RuntimeError("boom")


def not_tools() -> Any:
    return ["nope"]


def fake_entry_points(*values: tuple[str, str]) -> Any:
    eps = [metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in values]

    def entry_points(**kwargs: Any) -> Any:
        assert kwargs == {"group": ENTRY_POINT_GROUP}
        return eps

    return entry_points


def test_every_builtin_is_registered_without_installed_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metadata, "entry_points", fake_entry_points())
    assert set(default_registry().names()) >= BUILTIN_NAMES


def test_plugins_load_and_broken_ones_become_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    here = __name__
    monkeypatch.setattr(
        metadata,
        "entry_points",
        fake_entry_points(
            ("echo", f"{here}:make_echo"),
            ("broken", f"{here}:broken"),
            ("wrong", f"{here}:not_tools"),
            ("missing", "no_such_module_xyz:tools"),
            ("files", "magray.tools.files:TOOLS"),  # a built-in declared as an entry point
        ),
    )
    warnings: list[str] = []
    tools = default_registry(warn=warnings.append)
    assert "echo_plugin" in tools
    assert set(tools.names()) >= BUILTIN_NAMES
    assert len(warnings) == 3
    assert any("'broken'" in w and "boom" in w for w in warnings)
    assert any("'wrong'" in w and "not a magray Tool" in w for w in warnings)
    assert any("'missing'" in w for w in warnings)


def test_a_plugin_clashing_with_a_builtin_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        metadata,
        "entry_points",
        fake_entry_points(("dupe", "magray.tools.web:TOOLS"), ("dupe2", f"{__name__}:dupe")),
    )
    warnings: list[str] = []
    tools = default_registry(warn=warnings.append)
    assert "web_fetch" in tools
    # built-ins load first: both clashing plugins are skipped, never the built-in
    assert len(warnings) == 2 and all("already registered" in w for w in warnings)
    assert any("'dupe2'" in w for w in warnings)


def dupe() -> Any:
    from magray.tools.web import WebFetch

    return WebFetch()
