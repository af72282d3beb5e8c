"""The SQLite task graph: migrations, edges, done unblocking, rm refusal/force, save_plan."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.errors import (
    CycleError,
    HasDependentsError,
    NotFoundError,
    SchemaError,
    UsageError,
)
from magray.tasks import PlanStep, TaskGraph, TaskState, save_plan


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[TaskGraph]:
    g = TaskGraph(tmp_path / "tasks.db")
    yield g
    g.close()


def test_store_lives_in_the_data_dir_with_wal_and_migrations(magray_home: Path) -> None:
    path = magray_home / "data" / "tasks.db"
    with TaskGraph(path) as g:
        g.add("one")
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version, name FROM schema_migrations").fetchall() == [
        (1, "initial task graph")
    ]
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError):
        TaskGraph(path)


def test_add_resolves_prefixes_and_links_memory(graph: TaskGraph) -> None:
    a = graph.add("design", priority=1, notes="n", memory_ids=["ABCD1234"])
    b = graph.add("build", depends_on=[a.id[:5]])
    assert b.depends_on == (a.id,)
    assert graph.resolve(a.id[:4]).memory_ids == ("abcd1234",)
    assert graph.resolve(a.id.upper()).notes == "n"
    with pytest.raises(NotFoundError):
        graph.resolve("zzzzzzzz")
    with pytest.raises(UsageError):
        graph.add("bad", priority=0)
    with pytest.raises(UsageError):
        graph.add("   ")
    with pytest.raises(NotFoundError):
        graph.add("dangling", depends_on=["zzzz"])


def test_depends_refuses_cycles_and_self(graph: TaskGraph) -> None:
    a, b, c = graph.add("a"), graph.add("b"), graph.add("c")
    graph.depend(b.id, a.id)
    graph.depend(c.id, b.id)
    with pytest.raises(CycleError) as info:
        graph.depend(a.id, c.id)
    assert info.value.cycle == (a.id, c.id, b.id, a.id)
    assert str(info.value).count("\n") == 0
    with pytest.raises(UsageError):
        graph.depend(a.id, a.id)
    assert graph.resolve(a.id).depends_on == ()  # nothing was written


def test_done_unblocks_dependents(graph: TaskGraph) -> None:
    a = graph.add("a", priority=2)
    b = graph.add("b", depends_on=[a.id], priority=1)
    c = graph.add("c", depends_on=[a.id, b.id])
    assert [t.id for t in graph.ready()] == [a.id]
    done = graph.done(a.id)
    assert done.state is TaskState.DONE and done.done_at is not None
    assert [t.id for t in graph.ready()] == [b.id]
    graph.done(b.id)
    assert [t.id for t in graph.ready()] == [c.id]
    back = graph.set_state(a.id, TaskState.TODO)
    assert back.done_at is None
    assert [t.id for t in graph.ready()] == [a.id]
    assert [t.id for t in graph.tasks([TaskState.DONE])] == [b.id]


def test_rm_refuses_then_force_removes_edges(graph: TaskGraph) -> None:
    a = graph.add("a")
    b = graph.add("b", depends_on=[a.id])
    with pytest.raises(HasDependentsError) as info:
        graph.remove(a.id)
    assert info.value.dependents == (b.id,)
    assert graph.resolve(a.id)
    graph.remove(a.id, force=True)
    assert graph.resolve(b.id).depends_on == ()
    with pytest.raises(NotFoundError):
        graph.resolve(a.id)
    graph.remove(b.id)
    assert graph.tasks() == []


def test_save_plan_maps_local_ids_to_edges(graph: TaskGraph) -> None:
    steps = [
        PlanStep(id="ship", title="Ship", depends_on=("test", "docs")),
        PlanStep(id="code", title="Code", priority=2),
        PlanStep(id="test", title="Test", depends_on=("code",)),
        PlanStep(id="docs", title="Docs", depends_on=("code",), memory_ids=("mem12345",)),
    ]
    tasks = graph.save_plan(steps)
    by = {s.id: t for s, t in zip(steps, tasks, strict=True)}
    assert [t.title for t in tasks] == ["Ship", "Code", "Test", "Docs"]
    assert set(by["ship"].depends_on) == {by["test"].id, by["docs"].id}
    assert by["test"].depends_on == (by["code"].id,)
    assert by["docs"].memory_ids == ("mem12345",)
    assert [t.id for t in graph.ready()] == [by["code"].id]
    graph.done(by["code"].id)
    assert [t.id for t in graph.ready()] == [by["test"].id, by["docs"].id]  # plan order


def test_save_plan_refuses_bad_plans_without_writing(graph: TaskGraph) -> None:
    with pytest.raises(CycleError):
        graph.save_plan([PlanStep("a", "A", ("b",)), PlanStep("b", "B", ("a",))])
    with pytest.raises(UsageError):
        graph.save_plan([PlanStep("a", "A", ("nope",))])
    with pytest.raises(UsageError):
        graph.save_plan([PlanStep("a", "A"), PlanStep("a", "again")])
    with pytest.raises(UsageError):
        graph.save_plan([PlanStep("a", "A"), PlanStep("b", "B", priority=7)])
    assert graph.tasks() == []


def test_module_save_plan_uses_the_given_graph(tmp_path: Path) -> None:
    path = tmp_path / "tasks.db"
    tasks = save_plan([PlanStep("x", "X"), PlanStep("y", "Y", ("x",))], path)
    with TaskGraph(path) as g:
        assert [t.id for t in g.ordered()] == [t.id for t in tasks]
