"""Pure graph functions: cycles, topological order, ready set, Mermaid and tree output."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from magray.errors import CycleError
from magray.tasks import (
    Task,
    TaskState,
    find_cycle,
    ready,
    to_mermaid,
    to_tree,
    topological_order,
)


def t(
    tid: str, *deps: str, state: TaskState = TaskState.TODO, priority: int = 3, at: float = 0
) -> Task:
    return Task(
        id=tid, title=f"Task {tid}", state=state, priority=priority, created_at=at, depends_on=deps
    )


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=8),
    pairs=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=40),
)
def test_accepted_edges_never_hide_a_cycle(n: int, pairs: list[tuple[int, int]]) -> None:
    edges: dict[str, list[str]] = {str(i): [] for i in range(n)}
    for a, b in pairs:
        task, on = str(a % n), str(b % n)
        cycle = find_cycle(edges, task, on)
        if cycle is None:
            edges[task].append(on)
            continue
        # A refused edge names a real cycle: it closes through the new edge.
        assert cycle[0] == cycle[-1] == task
        assert cycle[1] == on
        for waiter, waited in itertools.pairwise(cycle[1:]):
            assert waited in edges[waiter]
    order = [x.id for x in topological_order(t(k, *v) for k, v in edges.items())]
    assert sorted(order) == sorted(edges)
    pos = {tid: i for i, tid in enumerate(order)}
    for task, deps in edges.items():
        for dep in deps:
            assert pos[dep] < pos[task]


def test_topological_order_reports_a_cycle() -> None:
    with pytest.raises(CycleError) as info:
        topological_order([t("a", "c"), t("b", "a"), t("c", "b"), t("d")])
    assert info.value.cycle == ("a", "c", "b", "a")


def test_self_dependency_is_a_cycle() -> None:
    assert find_cycle({}, "a", "a") == ["a", "a"]


def test_ready_orders_by_priority_then_age_and_waits_for_done() -> None:
    tasks = [
        t("old", priority=3, at=1),
        t("new", priority=3, at=2),
        t("urgent", priority=1, at=3),
        t("waits", "old", priority=1),
        t("after-done", "fin", priority=5),
        t("fin", state=TaskState.DONE),
        t("doing", state=TaskState.DOING),
        t("after-cancel", "gone"),
        t("gone", state=TaskState.CANCELLED),
    ]
    assert [x.id for x in ready(tasks)] == ["urgent", "old", "new", "after-done"]


def test_mermaid_exact() -> None:
    tasks = [
        t("aaa", priority=1),
        t("bbb", "aaa", state=TaskState.DONE),
        t("ccc", "aaa", "bbb", state=TaskState.BLOCKED),
    ]
    tasks[0] = Task(id="aaa", title='Say "hi" & <b>go</b>', priority=1)
    assert to_mermaid(tasks) == "\n".join(
        [
            "graph TD",
            '    aaa["Say #quot;hi#quot; #amp; #lt;b#gt;go#lt;/b#gt;"]:::todo',
            '    bbb["Task bbb"]:::done',
            '    ccc["Task ccc"]:::blocked',
            "    aaa --> bbb",
            "    aaa --> ccc",
            "    bbb --> ccc",
            "    classDef todo fill:#ffffff,stroke:#555555",
            "    classDef blocked fill:#ffe3e3,stroke:#e03131",
            "    classDef done fill:#d3f9d8,stroke:#2f9e44",
        ]
    )


def test_tree_exact() -> None:
    tasks = [t("aaa", priority=1), t("bbb", "aaa"), t("ccc", "aaa", "bbb"), t("ddd")]
    assert to_tree(tasks) == "\n".join(
        [
            "[ ] aaa  P1  Task aaa",
            "├─ [ ] bbb  P3  Task bbb",
            "│  └─ [ ] ccc  P3  Task ccc",
            "└─ ↑ ccc  Task ccc",
            "[ ] ddd  P3  Task ddd",
        ]
    )
