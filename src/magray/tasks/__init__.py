"""The task graph: tasks with states, priorities, dependencies and memory links.

Public API: ``TaskGraph`` (the SQLite store), ``save_plan`` (store an agent's plan as tasks),
the values ``Task``/``PlanStep``/``TaskState`` and the pure functions ``find_cycle``,
``ready``, ``topological_order``, ``to_mermaid`` and ``to_tree``. Its errors
(``CycleError``, ``HasDependentsError``) live in ``magray.errors`` with the rest of the tree.
"""

from __future__ import annotations

from magray.tasks.graph import TaskGraph, save_plan
from magray.tasks.model import (
    PlanStep,
    Task,
    TaskState,
    find_cycle,
    parse_state,
    ready,
    to_mermaid,
    to_tree,
    topological_order,
)

__all__ = [
    "PlanStep",
    "Task",
    "TaskGraph",
    "TaskState",
    "find_cycle",
    "parse_state",
    "ready",
    "save_plan",
    "to_mermaid",
    "to_tree",
    "topological_order",
]
