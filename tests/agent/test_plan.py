"""Plan validation, references and the JSON protocol (no LLM)."""

from __future__ import annotations

from magray.agent.plan import Plan, Step, order, plan_from_json, resolve, validate
from magray.agent.planner import first_json_object
from magray.tools.registry import default_registry


def test_validate_reports_every_problem() -> None:
    plan = plan_from_json(
        "g",
        {
            "steps": [
                {"id": "a", "tool": "nope", "args": {}},
                {"id": "b", "tool": "file_read", "args": {"path": 3}, "depends_on": ["zz"]},
                {"id": "c", "tool": "shell_exec", "args": {"argv": ["cat", "{{steps.a.output}}"]}},
            ]
        },
    )
    problems = validate(plan, default_registry(), max_steps=2)
    text = "\n".join(problems)
    assert "3 steps; at most 2" in text
    assert "unknown tool 'nope'" in text
    assert "unknown steps ['zz']" in text
    assert "step b: file_read: invalid arguments (path:" in text
    assert "references output of ['a'] without listing it" in text


def test_cycles_are_refused() -> None:
    plan = Plan(
        "g",
        (
            Step("a", "git_status", {}, ("b",)),
            Step("b", "git_status", {}, ("a",)),
        ),
    )
    assert validate(plan, default_registry()) == [
        "the plan has a dependency cycle among ['a', 'b']"
    ]


def test_order_and_references() -> None:
    plan = Plan("g", (Step("b", "git_log", {}, ("a",)), Step("a", "git_status", {})))
    assert [s.id for s in order(plan)] == ["a", "b"]
    args = {"argv": ["echo", "{{ steps.a.output }}!"], "n": 1}
    assert resolve(args, {"a": "hi\n"}) == {"argv": ["echo", "hi!"], "n": 1}


def test_first_json_object_skips_prose() -> None:
    text = 'Sure {not json} here: {"steps": [{"id": "s1"}]} and {"x": 1}'
    assert first_json_object(text) == {"steps": [{"id": "s1"}]}
    assert first_json_object("no plan, just 4") is None


def test_plan_problems_have_no_words_of_the_command_line() -> None:
    """Plan problems are plain strings on every surface (the server's runs show them as
    they are): none may name a CLI option or command."""
    import re

    from magray.agent.strategies.base import check, still_invalid

    registry = default_registry()
    problems: list[str] = []
    for args in ({}, {"zz": 1}, {"path": 3, "argv": "x", "query": [], "start_line": "a"}):
        steps = [{"id": f"s{i}", "tool": t.name, "args": args} for i, t in enumerate(registry)]
        problems += check("g", {"steps": steps}, registry, None)[1]
    for raw in (
        {"steps": []},
        {"steps": "x"},
        {"steps": [1]},
        {"steps": [{"tool": "git_status", "args": []}]},
        {"steps": [{"tool": "git_status", "depends_on": "a"}]},
        {"steps": [{"id": "a", "tool": "nope", "depends_on": ["a", "zz"]}] * 2},
        {"steps": [{"id": "a", "tool": "git_status", "args": {"x": "{{steps.b.output}}"}}]},
        {
            "steps": [
                {"id": "a", "tool": "git_status", "depends_on": ["b"]},
                {"id": "b", "tool": "git_status", "depends_on": ["a"]},
            ]
        },
    ):
        problems += check("g", raw, registry, 1)[1]
    assert len(problems) > 20
    error = still_invalid(problems, 2)
    cli_only = re.compile(r"(?<![\w-])--[a-z]|`magray|\bmagray [a-z]")
    for text in (*problems, error.message_for("api")):
        assert not cli_only.search(text), text
