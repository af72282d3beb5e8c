"""task_add, task_list and task_update: the agent's hands on the ``TaskGraph``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from magray.tasks.graph import TaskGraph
from magray.tasks.model import Task, TaskState
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult, cap_output

GraphFactory = Callable[[], TaskGraph]


def _line(task: Task) -> str:
    deps = f" (after {', '.join(task.depends_on)})" if task.depends_on else ""
    return f"{task.id} [{task.state.value}] p{task.priority} {task.title}{deps}"


class _TaskTool(Tool[Any]):
    def __init__(self, graph: GraphFactory | None = None) -> None:
        self._factory = graph

    def _graph(self, ctx: ToolContext) -> TaskGraph:
        """The task graph of one call: the factory's, else that of the call's settings."""
        if self._factory is not None:
            return self._factory()
        return TaskGraph(ctx.require_settings(self.name).paths.tasks_db)


class TaskAddArgs(ToolArgs):
    title: str = Field(min_length=1, description="What needs doing.")
    priority: int = Field(default=3, ge=1, le=5, description="1 is the highest, 5 the lowest.")
    depends_on: list[str] = Field(default_factory=list, description="Ids of prerequisite tasks.")


class TaskAdd(_TaskTool):
    name = "task_add"
    description = "Add a todo task to the task graph, optionally depending on other tasks."
    risk = Risk.WRITE
    Args = TaskAddArgs

    def run(self, args: TaskAddArgs, ctx: ToolContext) -> ToolResult:
        with self._graph(ctx) as graph:
            task = graph.add(args.title, priority=args.priority, depends_on=args.depends_on)
        return ToolResult(ok=True, output=f"added {_line(task)}", data=task.to_dict())


class TaskListArgs(ToolArgs):
    state: TaskState | None = Field(default=None, description="Only tasks in this state.")


class TaskList(_TaskTool):
    name = "task_list"
    description = "List tasks (optionally those in one state) by priority."
    risk = Risk.READ
    Args = TaskListArgs

    def run(self, args: TaskListArgs, ctx: ToolContext) -> ToolResult:
        with self._graph(ctx) as graph:
            found = graph.tasks([args.state] if args.state else ())
        shown = "\n".join(_line(t) for t in found) if found else "no tasks"
        data = [t.to_dict() for t in found]
        return ToolResult(ok=True, output=cap_output(shown, ctx.output_cap), data=data)


class TaskUpdateArgs(ToolArgs):
    id: str = Field(min_length=1, description="Task id (or a unique prefix).")
    state: TaskState = Field(description="The new state.")


class TaskUpdate(_TaskTool):
    name = "task_update"
    description = "Move a task to a new state (todo, doing, blocked, done, cancelled)."
    risk = Risk.WRITE
    Args = TaskUpdateArgs

    def run(self, args: TaskUpdateArgs, ctx: ToolContext) -> ToolResult:
        with self._graph(ctx) as graph:
            task = graph.set_state(args.id, args.state)
        return ToolResult(ok=True, output=f"updated {_line(task)}", data=task.to_dict())


def tools(graph: GraphFactory | None = None) -> tuple[Tool[Any], ...]:
    """The task tools over ``graph`` (a factory of open ``TaskGraph`` objects)."""
    return (TaskAdd(graph), TaskList(graph), TaskUpdate(graph))


TOOLS: tuple[Tool[Any], ...] = tools()
