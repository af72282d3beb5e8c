"""Empty values where a name or a path is wanted are refused, never read as "everything".

An empty ``--project`` once matched every memory (so ``forget --project ''`` forgot them
all), an empty path argument once meant the current folder, and an empty ``--path`` of a
policy rule once made an unconditional allow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_errors_cli import fails, run


def _add(text: str, *extra: str) -> str:
    added = run(["memory", "add", text, "--json", *extra])
    assert added.exit_code == 0, added.output
    return str(json.loads(added.stdout)["id"])


def _ids() -> set[str]:
    listed = run(["memory", "list", "--json", "--limit", "100"])
    assert listed.exit_code == 0, listed.output
    return {r["id"] for r in json.loads(listed.stdout)["records"]}


@pytest.mark.parametrize("project", ["", "   "])
def test_forget_an_empty_project_forgets_nothing(project: str) -> None:
    kept = {_add("no project at all"), _add("in a project", "--project", "p")}
    fails(run(["forget", "--project", project, "--yes"]), 2, "--project", "empty")
    assert _ids() == kept


def test_the_core_refuses_to_forget_an_empty_project() -> None:
    from magray.config import load_settings
    from magray.errors import UsageError
    from magray.memory.records import Filters
    from magray.runtime import Runtime

    kept = _add("still here")
    with Runtime(load_settings()) as rt, pytest.raises(UsageError, match="project"):
        rt.open_memory().forget_where(Filters(project=""))
    assert _ids() == {kept}


@pytest.mark.parametrize(
    "args",
    [
        ["memory", "add", "x", "--project", ""],
        ["memory", "add", "x", "--session", " "],
        ["memory", "search", "x", "--project", ""],
        ["memory", "list", "--project", ""],
        ["memory", "export", "out.jsonl", "--project", ""],
        ["sources", "list", "--project", ""],
        ["ingest", "README.md", "--project", ""],
        ["ask", "why?", "--project", ""],
        ["ask", "why?", "--conversation", " "],
    ],
)
def test_an_empty_project_or_session_is_a_usage_error(args: list[str]) -> None:
    flag = next(a for a in args if a in {"--session", "--project", "--conversation"})
    fails(run(args), 2, flag, "empty")


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", ""],
        ["ingest", "  "],
        ["forget", "--source", ""],
        ["memory", "import", ""],
        ["memory", "export", ""],
        ["memory", "backup", ""],
        ["backup", ""],
        ["restore", ""],
    ],
)
def test_an_empty_path_is_a_usage_error(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "notes.md").write_text("# Notes\n\nnot to be ingested by an empty path\n")
    monkeypatch.chdir(tmp_path)
    fails(run(args), 2, "empty", "path")
    assert _ids() == set()


@pytest.mark.parametrize("path", ["", "  "])
def test_a_policy_rule_with_an_empty_path_is_refused(path: str, magray_home: Path) -> None:
    fails(run(["policy", "allow", "file_write", "--path", path]), 1, "path", "e.g.")
    assert not (magray_home / "policy.toml").exists()


def test_policy_toml_with_an_empty_path_is_refused(magray_home: Path) -> None:
    (magray_home / "policy.toml").write_text(
        '[[rules]]\ntool = "file_write"\naction = "allow"\npath = ""\n'
    )
    fails(run(["policy", "show"]), 1, "policy.toml", "rules[1]", "path")


def test_an_inverted_time_range_is_a_usage_error() -> None:
    args = ["memory", "search", "x", "--created-after", "2026-02-01"]
    fails(run([*args, "--created-before", "2026-01-01"]), 2, "created after", "later", "swap")


def test_an_empty_tag_filter_is_a_usage_error() -> None:
    fails(run(["memory", "search", "x", "--tag", ""]), 2, "tag", "empty")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["memory", "search", "x", "--kind", ""], ["kind", "empty"]),
        (["logs", "-n", "100001"], ["-n", "at most"]),
        (["logs", "-n", "99999999999999999999"], ["-n", "out of range"]),
        (["audit", "list", "--tenant", "../x"], ["invalid tenant"]),
    ],
)
def test_more_values_out_of_bounds(args: list[str], needles: list[str]) -> None:
    fails(run(args), 2, *needles)
