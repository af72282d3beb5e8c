"""Task values and the pure graph functions over them: cycles, ready set, order, Mermaid.

A task *depends on* other tasks: it can start once they are done. Edges point from a task
to the tasks it waits for; in drawings (tree, Mermaid) they run the other way, from the
prerequisite to what it unblocks.
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from magray.errors import MEMORY, NOTE, CycleError, UsageError
from magray.timefmt import iso

ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
ID_LENGTH = 8  # 40 random bits: a task list is small, collisions are retried on insert
MIN_ID_PREFIX = 3
PRIORITIES = range(1, 6)  # 1 is the highest


class TaskState(StrEnum):
    """Where a task stands."""

    TODO = "todo"
    DOING = "doing"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Task:
    """One task as stored. Times are unix seconds."""

    id: str
    title: str
    notes: str = ""
    state: TaskState = TaskState.TODO
    priority: int = 3
    created_at: float = 0.0
    updated_at: float = 0.0
    done_at: float | None = None
    depends_on: tuple[str, ...] = ()
    memory_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The task as JSON data (``tasks show --json``, the server, the task tools)."""
        return {
            "id": self.id,
            "title": self.title,
            "notes": self.notes,
            "state": self.state.value,
            "priority": self.priority,
            "depends_on": list(self.depends_on),
            "memory": list(self.memory_ids),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "done_at": iso(self.done_at),
        }


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One step of a plan to save as a task; ``id`` and ``depends_on`` are plan-local."""

    id: str
    title: str
    depends_on: tuple[str, ...] = ()
    notes: str = ""
    priority: int = 3
    memory_ids: tuple[str, ...] = field(default=())


def new_task_id() -> str:
    """A random short base32 id."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def parse_state(value: str) -> TaskState:
    """``value`` as a state, or a UsageError listing the states."""
    try:
        return TaskState(value.strip().lower())
    except ValueError:
        choices = ", ".join(s.value for s in TaskState)
        raise UsageError(f"unknown task state {value!r}; use one of {choices}.") from None


def check_priority(value: int) -> int:
    """``value`` if it is a priority (1 highest … 5), else a UsageError."""
    if value not in PRIORITIES:
        raise UsageError(f"priority must be 1 (highest) to 5 (lowest), not {value}.")
    return value


MAX_TITLE = 2_000  # characters, as the HTTP API takes them
MAX_NOTES = 20_000


def one_line(text: str) -> str:
    """``text`` as one line: runs of white space (newlines too) become one space, other
    control characters go (for titles made from other text, such as a plan's steps)."""
    return "".join(c for c in " ".join(text.split()) if c.isprintable())


def check_text(title: str | None, notes: str | None) -> None:
    """A UsageError when a title or notes are longer than the API (and a listing) allows, or
    a title is not one line of text (a newline would break `tasks list` and `graph`), or
    notes hold NUL (never text)."""
    if title is not None and not title.strip().isprintable():
        raise UsageError(
            "a task title is one line of text without control characters (it holds a newline,"
            " tab or escape); put the rest in the notes (",
            NOTE,
            ").",
        )
    if title is not None and len(title.strip()) > MAX_TITLE:
        raise UsageError(
            f"a task title is at most {MAX_TITLE:,} characters (got {len(title.strip()):,});"
            " put the rest in the notes (",
            NOTE,
            ").",
        )
    if notes is not None and "\x00" in notes:
        raise UsageError("task notes contain NUL bytes; write them as text, not binary data.")
    if notes is not None and len(notes) > MAX_NOTES:
        raise UsageError(
            f"task notes are at most {MAX_NOTES:,} characters (got {len(notes):,}); keep the"
            " long text in memory and link it with ",
            MEMORY,
            ".",
        )


def find_cycle(edges: Mapping[str, Iterable[str]], task: str, on: str) -> list[str] | None:
    """The cycle that ``task`` depending on ``on`` would close, or None.

    ``edges`` maps a task id to the ids it depends on. The answer starts and ends with
    ``task``: ``[task, on, …, task]``. A self-dependency is the cycle ``[task, task]``.
    """
    if task == on:
        return [task, task]
    # Depth-first search from `on` along depends_on edges, looking for `task`.
    parent: dict[str, str] = {}
    stack = [on]
    seen = {on}
    while stack:
        node = stack.pop()
        for nxt in edges.get(node, ()):
            if nxt in seen:
                continue
            parent[nxt] = node
            if nxt == task:
                path = [task]
                while path[-1] != on:
                    path.append(parent[path[-1]])
                return [task, *reversed(path)]
            seen.add(nxt)
            stack.append(nxt)
    return None


def _sort_key(task: Task) -> tuple[int, float, str]:
    return (task.priority, task.created_at, task.id)


def topological_order(tasks: Iterable[Task]) -> list[Task]:
    """Tasks with every dependency before its dependents (ties: priority, then age).

    Dependencies on ids not in ``tasks`` are ignored. Raises ``CycleError`` on a cycle.
    """
    by_id = {t.id: t for t in tasks}
    waiting = {t.id: {d for d in t.depends_on if d in by_id} for t in by_id.values()}
    dependents: dict[str, list[str]] = {tid: [] for tid in by_id}
    for tid, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(tid)
    heap = [(_sort_key(by_id[tid]), tid) for tid, deps in waiting.items() if not deps]
    heapq.heapify(heap)
    order: list[Task] = []
    while heap:
        _, tid = heapq.heappop(heap)
        order.append(by_id[tid])
        for child in dependents[tid]:
            waiting[child].discard(tid)
            if not waiting[child]:
                heapq.heappush(heap, (_sort_key(by_id[child]), child))
    if len(order) < len(by_id):
        left = {tid: tuple(d for d in deps) for tid, deps in waiting.items() if deps}
        raise CycleError(_any_cycle(left))
    return order


def _any_cycle(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Some cycle in ``edges`` (every node here still has an unmet dependency)."""
    start = min(edges)
    path = [start]
    index = {start: 0}
    while True:
        nxt = min(d for d in edges[path[-1]] if d in edges)
        if nxt in index:
            return [*path[index[nxt] :], nxt]
        index[nxt] = len(path)
        path.append(nxt)


def ready(tasks: Iterable[Task]) -> list[Task]:
    """Todo tasks whose dependencies are all done, by priority then age."""
    by_id = {t.id: t for t in tasks}

    def done(dep: str) -> bool:
        found = by_id.get(dep)
        return found is not None and found.state is TaskState.DONE

    out = [
        t
        for t in by_id.values()
        if t.state is TaskState.TODO and all(done(d) for d in t.depends_on)
    ]
    return sorted(out, key=_sort_key)


_MERMAID_STYLE = {
    TaskState.TODO: "fill:#ffffff,stroke:#555555",
    TaskState.DOING: "fill:#fff3bf,stroke:#f08c00",
    TaskState.BLOCKED: "fill:#ffe3e3,stroke:#e03131",
    TaskState.DONE: "fill:#d3f9d8,stroke:#2f9e44",
    TaskState.CANCELLED: "fill:#e9ecef,stroke:#868e96,stroke-dasharray:4 2",
}


def _mermaid_label(title: str) -> str:
    return (
        title.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def to_mermaid(tasks: Iterable[Task]) -> str:
    """A Mermaid ``graph TD`` block: one node per task, edges prerequisite → dependent."""
    order = topological_order(tasks)
    ids = {t.id for t in order}
    lines = ["graph TD"]
    for t in order:
        lines.append(f'    {t.id}["{_mermaid_label(t.title)}"]:::{t.state.value}')
    for t in order:
        for dep in sorted(t.depends_on):
            if dep in ids:
                lines.append(f"    {dep} --> {t.id}")
    used = {t.state for t in order}
    for state in TaskState:
        if state in used:
            lines.append(f"    classDef {state.value} {_MERMAID_STYLE[state]}")
    return "\n".join(lines)


_MARK = {
    TaskState.TODO: "[ ]",
    TaskState.DOING: "[~]",
    TaskState.BLOCKED: "[!]",
    TaskState.DONE: "[x]",
    TaskState.CANCELLED: "[-]",
}


def task_line(task: Task) -> str:
    """``[ ] id  P2  title`` — one task on one line."""
    return f"{_MARK[task.state]} {task.id}  P{task.priority}  {task.title}"


def to_tree(tasks: Iterable[Task]) -> str:
    """A text tree: tasks without dependencies at the root, dependents indented below.

    A task with several dependencies is drawn in full under the first one reached and
    referred to as ``↑ id`` elsewhere.
    """
    order = topological_order(tasks)
    ids = {t.id for t in order}
    children: dict[str, list[Task]] = {t.id: [] for t in order}
    for t in order:
        for dep in t.depends_on:
            if dep in ids:
                children[dep].append(t)
    lines: list[str] = []
    drawn: set[str] = set()

    def walk(task: Task, prefix: str, tail: str) -> None:
        if task.id in drawn:
            lines.append(f"{prefix}{tail}↑ {task.id}  {task.title}")
            return
        drawn.add(task.id)
        lines.append(f"{prefix}{tail}{task_line(task)}")
        below = prefix + ("" if not tail else ("   " if tail == "└─ " else "│  "))
        kids = children[task.id]
        for i, kid in enumerate(kids):
            walk(kid, below, "└─ " if i == len(kids) - 1 else "├─ ")

    for t in order:
        if not any(d in ids for d in t.depends_on):
            walk(t, "", "")
    return "\n".join(lines)
