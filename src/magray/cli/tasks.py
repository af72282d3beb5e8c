"""`magray tasks ...`: add, list, show, start, block, cancel, reopen, done, edit, rm, depends,
ready, graph."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from magray.cli.app import new_app
from magray.cli.context import iso
from magray.views import task_json

if TYPE_CHECKING:
    from magray.tasks import TaskGraph
    from magray.tasks.model import Task

app = new_app("Plan work as a graph of tasks with priorities and dependencies.")

JSON = typer.Option(False, "--json", help="Print JSON (a stable contract).")


def _graph(*, reading: bool = False) -> TaskGraph:
    """The task graph; a command that only reads a home without one sees an empty graph
    (in memory) instead of creating folders and a database."""
    from pathlib import Path

    from magray.cli.context import settings
    from magray.tasks import TaskGraph

    path = settings().paths.tasks_db
    if reading and not path.exists():
        return TaskGraph(Path(":memory:"))
    return TaskGraph(path)


def emit(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


@app.command("add")
def add(
    title: str = typer.Argument(
        ..., help="What has to be done ('-' reads it from standard input)."
    ),
    priority: int = typer.Option(3, "--priority", "-p", help="1 (highest) to 5 (lowest)."),
    depends: list[str] = typer.Option([], "--depends", help="A task it waits for (repeatable)."),
    note: str = typer.Option("", "--note", help="Free-text notes."),
    memory: list[str] = typer.Option(
        [], "--memory", help="A linked memory: its id or a unique prefix (repeatable)."
    ),
    json_out: bool = JSON,
) -> None:
    """Add a task.

    Example: magray tasks add "Write the release notes" --priority 2 --depends 3f9k
    """
    if title == "-":
        from magray.cli.context import read_text

        title = read_text(title, "the title").strip()
    if memory:
        from magray.cli.context import open_memory

        with open_memory(reading=True) as store:
            memory = store.resolve_ids(memory)
    with _graph() as graph:
        task = graph.add(
            title, priority=priority, depends_on=depends, notes=note, memory_ids=memory
        )
    if json_out:
        emit(
            {
                "id": task.id,
                "title": task.title,
                "state": task.state.value,
                "priority": task.priority,
                "depends_on": list(task.depends_on),
            }
        )
    else:
        typer.echo(f"{task.id}  added (P{task.priority})")


@app.command("list")
def list_(
    state: list[str] = typer.Option([], "--state", help="Only this state (repeatable)."),
    json_out: bool = JSON,
) -> None:
    """List tasks by priority then age.

    Example: magray tasks list --state todo --state doing
    """
    from magray.tasks import parse_state
    from magray.tasks.model import task_line

    states = [parse_state(s) for s in state]
    with _graph(reading=True) as graph:
        tasks = graph.tasks(states)
    if json_out:
        emit([task_json(t) for t in tasks])
    else:
        for t in tasks:
            typer.echo(task_line(t))


@app.command("show")
def show(
    task_id: str = typer.Argument(..., metavar="ID", help="Task id or a unique prefix."),
    json_out: bool = JSON,
) -> None:
    """Show one task with its dependencies, dependents and memory links.

    Example: magray tasks show 3f9k
    """
    with _graph(reading=True) as graph:
        task = graph.resolve(task_id)
        dependents = graph.dependents(task.id)
    if json_out:
        emit({**task_json(task), "dependents": dependents})
        return
    typer.echo(f"{task.id}  {task.title}")
    typer.echo(f"state:      {task.state.value}")
    typer.echo(f"priority:   {task.priority}")
    typer.echo(f"created:    {iso(task.created_at)}")
    if task.done_at is not None:
        typer.echo(f"done:       {iso(task.done_at)}")
    typer.echo(f"depends on: {', '.join(task.depends_on) or '-'}")
    typer.echo(f"dependents: {', '.join(dependents) or '-'}")
    if task.memory_ids:
        typer.echo(f"memory:     {', '.join(task.memory_ids)}")
    if task.notes:
        typer.echo(f"notes:      {task.notes}")


@app.command("done")
def done(
    task_id: str = typer.Argument(..., metavar="ID", help="Task id or a unique prefix."),
    json_out: bool = JSON,
) -> None:
    """Mark a task done; prints the tasks that became ready.

    Example: magray tasks done 3f9k
    """
    with _graph() as graph:
        before = {t.id for t in graph.ready()}
        was = graph.resolve(task_id).state
        task = graph.done(task_id)
        _warn_waiting(graph, task)
        unblocked = [t for t in graph.ready() if t.id not in before]
    if json_out:
        emit({"id": task.id, "state": task.state.value, "unblocked": [t.id for t in unblocked]})
        return
    typer.echo(f"{task.id}  {'already done; nothing changed' if was is task.state else 'done'}")
    for t in unblocked:
        typer.echo(f"now ready: {t.id}  {t.title}")


def _move(task_id: str, state: str, json_out: bool) -> None:
    from magray.tasks import TaskState

    with _graph() as graph:
        was = graph.resolve(task_id).state
        task = graph.set_state(task_id, TaskState(state))
        if task.state is TaskState.DOING:
            _warn_waiting(graph, task)
    if json_out:
        emit(task_json(task))
    elif was is task.state:
        typer.echo(f"{task.id}  already {task.state.value}; nothing changed")
    else:
        typer.echo(f"{task.id}  {task.state.value}")


def _warn_waiting(graph: TaskGraph, task: Task) -> None:
    """Warn (on stderr) when ``task`` was started or finished before what it depends on."""
    from magray.cli import render
    from magray.tasks import TaskState

    waiting = [graph.resolve(d) for d in task.depends_on]
    open_ = [f"{d.id} ({d.state.value})" for d in waiting if d.state is not TaskState.DONE]
    if open_:
        render.warn(
            f"{task.id} depends on {', '.join(open_)}, not done yet; `magray tasks graph`"
            " shows the order."
        )


def _state_command(name: str, state: str, summary: str) -> None:
    """Register ``magray tasks NAME ID`` that moves a task to ``state``."""

    def command(
        task_id: str = typer.Argument(..., metavar="ID", help="Task id or a unique prefix."),
        json_out: bool = JSON,
    ) -> None:
        _move(task_id, state, json_out)

    command.__doc__ = f"{summary}\n\nExample: magray tasks {name} 3f9k"
    app.command(name)(command)


for _name, _state, _summary in (
    ("start", "doing", "Mark a task as being worked on (doing)."),
    ("block", "blocked", "Mark a task as blocked (waiting on something outside the graph)."),
    ("cancel", "cancelled", "Cancel a task (kept in the graph, never ready unless reopened)."),
    ("reopen", "todo", "Put a task back to todo (from done, doing, blocked or cancelled)."),
):
    _state_command(_name, _state, _summary)


@app.command("edit")
def edit(
    task_id: str = typer.Argument(..., metavar="ID", help="Task id or a unique prefix."),
    title: str | None = typer.Option(None, "--title", help="A new title (rename)."),
    notes: str | None = typer.Option(None, "--notes", help="New notes."),
    priority: int | None = typer.Option(None, "--priority", help="1 (highest) to 5."),
    json_out: bool = JSON,
) -> None:
    """Rename a task or change its notes or priority.

    Example: magray tasks edit 3f9k --title "Write the runbook"
    """
    from magray.errors import UsageError

    if title is None and notes is None and priority is None:
        raise UsageError("nothing to change; give --title, --notes or --priority.")
    with _graph() as graph:
        task = graph.edit(task_id, title=title, notes=notes, priority=priority)
    if json_out:
        emit(task_json(task))
    else:
        typer.echo(f"{task.id}  {task.title}")


@app.command("rm")
def rm(
    task_id: str = typer.Argument(..., metavar="ID", help="Task id or a unique prefix."),
    force: bool = typer.Option(False, "--force", help="Also remove other tasks' links to it."),
) -> None:
    """Remove a task (refused while others depend on it, unless --force).

    Example: magray tasks rm 3f9k --force
    """
    with _graph() as graph:
        task = graph.remove(task_id, force=force)
    typer.echo(f"{task.id}  removed")


@app.command("depends")
def depends(
    task_id: str = typer.Argument(..., metavar="ID", help="The task that waits."),
    on_id: str = typer.Argument(..., metavar="ON_ID", help="The task it waits for."),
) -> None:
    """Make ID depend on ON_ID (cycles and self-dependencies are refused).

    Example: magray tasks depends 3f9k 8hq2
    """
    with _graph() as graph:
        task = graph.depend(task_id, on_id)
    typer.echo(f"{task.id}  depends on {', '.join(task.depends_on)}")


@app.command("ready")
def ready(json_out: bool = JSON) -> None:
    """Todo tasks whose dependencies are all done, by priority then age.

    Example: magray tasks ready --json
    """
    from magray.tasks.model import task_line

    with _graph(reading=True) as graph:
        tasks = graph.ready()
    if json_out:
        emit([task_json(t) for t in tasks])
    else:
        for t in tasks:
            typer.echo(task_line(t))


@app.command("graph")
def graph(
    mermaid: bool = typer.Option(False, "--mermaid", help="Print a Mermaid `graph TD` block."),
) -> None:
    """Draw the task graph as a text tree (or Mermaid).

    Example: magray tasks graph --mermaid > tasks.mmd
    """
    from magray.tasks import to_mermaid, to_tree

    with _graph(reading=True) as store:
        tasks = store.tasks()
    text = to_mermaid(tasks) if mermaid else to_tree(tasks)
    if text:
        typer.echo(text)
