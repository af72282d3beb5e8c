"""The task graph store: SQLite at ``<data_dir>/tasks.db``, one transaction per change."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from magray.errors import (
    CycleError,
    HasDependentsError,
    Listing,
    NotFoundError,
    StoreError,
    StoreLockedError,
    UsageError,
    see,
)
from magray.sqlite_migrations import advice, connect
from magray.tasks.migrations import migrate
from magray.tasks.model import (
    MIN_ID_PREFIX,
    PlanStep,
    Task,
    TaskState,
    check_priority,
    check_text,
    find_cycle,
    new_task_id,
    topological_order,
)
from magray.tasks.model import ready as ready_set

_COLUMNS = "id, title, notes, state, priority, created_at, updated_at, done_at"


def _connect(path: Path) -> sqlite3.Connection:
    try:
        conn = connect(path, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the task graph at {path}: {exc}{advice(exc)}.") from None
    return conn


class TaskGraph:
    """Tasks, their dependencies and memory links. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = _connect(self.path)
        try:
            migrate(self.conn)
        except BaseException:
            self.conn.close()
            raise

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> TaskGraph:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: reads inside it see what the change is checked against."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc).lower():
                raise StoreLockedError(
                    f"another process is writing the task graph {self.path}; try again."
                ) from None
            raise StoreError(f"cannot write the task graph {self.path}: {exc}.") from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reads ---------------------------------------------------------------------------
    def _load(self, rows: Sequence[tuple[Any, ...]]) -> list[Task]:
        ids = [str(r[0]) for r in rows]
        deps: dict[str, list[str]] = {i: [] for i in ids}
        links: dict[str, list[str]] = {i: [] for i in ids}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for tid, dep in self.conn.execute(
                f"SELECT task_id, depends_on FROM task_deps WHERE task_id IN ({marks})"
                " ORDER BY task_id, depends_on",
                chunk,
            ):
                deps[tid].append(dep)
            for tid, rec in self.conn.execute(
                f"SELECT task_id, record_id FROM task_memory WHERE task_id IN ({marks})"
                " ORDER BY task_id, record_id",
                chunk,
            ):
                links[tid].append(rec)
        out = []
        for tid, title, notes, state, priority, created, updated, done_at in rows:
            key = str(tid)
            out.append(
                Task(
                    id=key,
                    title=str(title),
                    notes=str(notes),
                    state=TaskState(str(state)),
                    priority=int(priority),
                    created_at=float(created),
                    updated_at=float(updated),
                    done_at=None if done_at is None else float(done_at),
                    depends_on=tuple(deps[key]),
                    memory_ids=tuple(links[key]),
                )
            )
        return out

    def resolve(self, id_or_prefix: str) -> Task:
        """The task whose id is ``id_or_prefix`` or uniquely starts with it."""
        key = id_or_prefix.strip().lower()
        if len(key) < MIN_ID_PREFIX:
            raise UsageError(f"give at least {MIN_ID_PREFIX} characters of a task id.")
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM tasks WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
            (key, key + "\uffff"),
        ).fetchall()
        exact = [r for r in rows if r[0] == key]
        if exact:
            rows = exact
        if not rows:
            raise NotFoundError(f"no task with id {id_or_prefix!r}", see(Listing.TASKS))
        if len(rows) > 1:
            ids = ", ".join(str(r[0]) for r in rows[:5])
            raise UsageError(f"task id prefix {id_or_prefix!r} is ambiguous ({ids}); give more.")
        return self._load(rows)[0]

    def tasks(self, states: Collection[TaskState] = ()) -> list[Task]:
        """Every task (or those in ``states``), by priority then age."""
        sql = f"SELECT {_COLUMNS} FROM tasks"
        params: list[str] = []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            params = [s.value for s in states]
        sql += " ORDER BY priority, created_at, id"
        return self._load(self.conn.execute(sql, params).fetchall())

    def dependents(self, task_id: str) -> list[str]:
        """Ids of the tasks that depend on ``task_id``."""
        rows = self.conn.execute(
            "SELECT task_id FROM task_deps WHERE depends_on = ? ORDER BY task_id", (task_id,)
        )
        return [str(r[0]) for r in rows]

    def ready(self) -> list[Task]:
        """Todo tasks whose dependencies are all done, by priority then age."""
        return ready_set(self.tasks())

    def ordered(self) -> list[Task]:
        """Every task, dependencies first."""
        return topological_order(self.tasks())

    # -- writes --------------------------------------------------------------------------
    def _insert(
        self,
        conn: sqlite3.Connection,
        title: str,
        priority: int,
        notes: str,
        depends_on: Sequence[str],
        memory_ids: Sequence[str],
        now: float,
    ) -> str:
        title = title.strip()
        if not title:
            raise UsageError("a task needs a non-empty title.")
        check_text(title, notes)
        check_priority(priority)
        for _ in range(10):
            tid = new_task_id()
            try:
                conn.execute(
                    f"INSERT INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, 'todo', ?, ?, ?, NULL)",
                    (tid, title, notes, priority, now, now),
                )
                break
            except sqlite3.IntegrityError:
                continue
        else:  # pragma: no cover - 40 random bits colliding ten times in a row
            raise StoreError("could not find a free task id; try again.")
        conn.executemany(
            "INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?, ?)",
            [(tid, dep) for dep in depends_on],
        )
        conn.executemany(
            "INSERT OR IGNORE INTO task_memory (task_id, record_id) VALUES (?, ?)",
            [(tid, rec.strip().lower()) for rec in memory_ids if rec.strip()],
        )
        return tid

    def add(
        self,
        title: str,
        *,
        priority: int = 3,
        depends_on: Sequence[str] = (),
        notes: str = "",
        memory_ids: Sequence[str] = (),
    ) -> Task:
        """Add a todo task; ``depends_on`` takes ids or unique prefixes."""
        check_priority(priority)
        deps = [self.resolve(d).id for d in depends_on]
        with self._write() as conn:
            tid = self._insert(conn, title, priority, notes, deps, memory_ids, time.time())
        return self.resolve(tid)

    def set_state(self, id_or_prefix: str, state: TaskState) -> Task:
        """Move a task to ``state`` (``done_at`` is set on done, cleared otherwise); a task
        already in ``state`` is left as it is."""
        task = self.resolve(id_or_prefix)
        if task.state is state:
            return task
        now = time.time()
        done_at = (task.done_at or now) if state is TaskState.DONE else None
        with self._write() as conn:
            conn.execute(
                "UPDATE tasks SET state = ?, updated_at = ?, done_at = ? WHERE id = ?",
                (state.value, now, done_at, task.id),
            )
        return self.resolve(task.id)

    def edit(
        self,
        id_or_prefix: str,
        *,
        title: str | None = None,
        notes: str | None = None,
        priority: int | None = None,
    ) -> Task:
        """Rename a task, or change its notes or priority (None leaves a field as it is)."""
        task = self.resolve(id_or_prefix)
        if title is not None and not title.strip():
            raise UsageError("a task title cannot be empty; give a few words.")
        check_text(title, notes)
        if priority is not None:
            check_priority(priority)
        with self._write() as conn:
            conn.execute(
                "UPDATE tasks SET title = ?, notes = ?, priority = ?, updated_at = ? WHERE id = ?",
                (
                    task.title if title is None else title.strip(),
                    task.notes if notes is None else notes,
                    task.priority if priority is None else priority,
                    time.time(),
                    task.id,
                ),
            )
        return self.resolve(task.id)

    def done(self, id_or_prefix: str) -> Task:
        """Mark a task done."""
        return self.set_state(id_or_prefix, TaskState.DONE)

    def remove(self, id_or_prefix: str, *, force: bool = False) -> Task:
        """Delete a task; with dependents only when ``force`` (their edges to it go too)."""
        task = self.resolve(id_or_prefix)
        with self._write() as conn:
            dependents = self.dependents(task.id)
            if dependents and not force:
                raise HasDependentsError(task.id, dependents)
            conn.execute("DELETE FROM tasks WHERE id = ?", (task.id,))
        return task

    def depend(self, id_or_prefix: str, on_id_or_prefix: str) -> Task:
        """Make a task depend on another; refuses self-dependencies and cycles."""
        task = self.resolve(id_or_prefix)
        on = self.resolve(on_id_or_prefix)
        if task.id == on.id:
            raise UsageError(f"task {task.id} cannot depend on itself.")
        with self._write() as conn:
            edges: dict[str, list[str]] = {}
            for tid, dep in conn.execute("SELECT task_id, depends_on FROM task_deps"):
                edges.setdefault(tid, []).append(dep)
            cycle = find_cycle(edges, task.id, on.id)
            if cycle is not None:
                raise CycleError(cycle)
            conn.execute(
                "INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?, ?)",
                (task.id, on.id),
            )
            conn.execute("UPDATE tasks SET updated_at = ? WHERE id = ?", (time.time(), task.id))
        return self.resolve(task.id)

    def save_plan(self, steps: Sequence[PlanStep]) -> list[Task]:
        """Store a plan as tasks in one transaction; returns them in the steps' order.

        Step ids are local to the plan: each ``depends_on`` must name another step.
        """
        local = [s.id for s in steps]
        if len(set(local)) != len(local):
            raise UsageError("plan step ids must be unique.")
        for step in steps:
            check_priority(step.priority)
            missing = [d for d in step.depends_on if d not in local]
            if missing:
                raise UsageError(f"plan step {step.id!r} depends on unknown steps {missing}.")
        # Refuse cyclic plans before writing anything (CycleError names the step ids).
        order = topological_order(
            Task(id=s.id, title=s.title, depends_on=s.depends_on, created_at=i)
            for i, s in enumerate(steps)
        )
        stored: dict[str, str] = {}
        now = time.time()
        with self._write() as conn:
            for planned in order:
                step = steps[int(planned.created_at)]
                deps = [stored[d] for d in step.depends_on]
                # Plan order breaks ties in the ready set (same priority → earlier step first).
                when = now + int(planned.created_at) * 1e-6
                stored[step.id] = self._insert(
                    conn, step.title, step.priority, step.notes, deps, step.memory_ids, when
                )
        return [self.resolve(stored[s.id]) for s in steps]


def save_plan(steps: Sequence[PlanStep], path: Path) -> list[Task]:
    """Store a plan as tasks in the task graph at ``path`` (see ``TaskGraph.save_plan``)."""
    with TaskGraph(path) as graph:
        return graph.save_plan(steps)
