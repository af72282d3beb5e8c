"""memory_remember, memory_recall and memory_forget: the agent's hands on ``Memory``.

Each call opens the memory and closes it afterwards, so tools hold no open store between
calls: through the factory the tool was made with, else the one the call's ``ToolContext``
opens (the runtime's memory, with its embedder), else the memory of the context's settings.
A tool never loads the global settings itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from magray.memory.records import Layer, NewRecord, Query
from magray.memory.service import Memory
from magray.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolResult, cap_output

MemoryFactory = Callable[[], Memory]


class _MemoryTool(Tool[Any]):
    def __init__(self, memory: MemoryFactory | None = None) -> None:
        self._factory = memory

    def _memory(self, ctx: ToolContext) -> Memory:
        """The memory to use for one call (the caller closes it)."""
        if self._factory is not None:
            return self._factory()
        if ctx.open_memory is not None:
            return ctx.open_memory()
        return Memory(ctx.require_settings(self.name))


class RememberArgs(ToolArgs):
    text: str = Field(min_length=1, description="What to remember.")
    layer: Layer = Field(default=Layer.INTERACT, description="Memory layer.")
    tags: list[str] = Field(default_factory=list, description="Tags (no commas).")


class MemoryRemember(_MemoryTool):
    name = "memory_remember"
    description = (
        "Remember a fact, note or preference for later in MAGRAY's memory "
        "(layer: interact, insights, assets)."
    )
    risk = Risk.WRITE
    Args = RememberArgs

    def run(self, args: RememberArgs, ctx: ToolContext) -> ToolResult:
        item = NewRecord(text=args.text, layer=args.layer, tags=tuple(args.tags))
        with self._memory(ctx) as memory:
            done = memory.remember(item)
        verb = "remembered" if done.created else "already remembered"
        data = done.to_dict()
        return ToolResult(ok=True, output=f"{verb} {done.id} in {done.layer.value}", data=data)


class RecallArgs(ToolArgs):
    query: str = Field(min_length=1, description="What to look for.")
    k: int = Field(default=5, ge=1, le=100, description="How many memories to return.")


class MemoryRecall(_MemoryTool):
    name = "memory_recall"
    description = (
        "Look up what was remembered or noted earlier: search MAGRAY's memory "
        "(hybrid vector + keyword) for the best matches."
    )
    risk = Risk.READ
    Args = RecallArgs

    def run(self, args: RecallArgs, ctx: ToolContext) -> ToolResult:
        with self._memory(ctx) as memory:
            hits = memory.recall(Query(text=args.query, k=args.k))
        found = [h.to_dict() for h in hits]
        lines = [f"{h['id']} [{h['layer']}] {h['score']:.3f} {h['text']}" for h in found]
        shown = "\n".join(lines) if lines else "nothing recalled"
        return ToolResult(ok=True, output=cap_output(shown, ctx.output_cap), data=found)


class ForgetArgs(ToolArgs):
    id: str = Field(min_length=1, description="Record id (or a unique prefix) to forget.")


class MemoryForget(_MemoryTool):
    name = "memory_forget"
    description = "Delete one memory record by id."
    risk = Risk.WRITE
    Args = ForgetArgs

    def preview(self, args: ForgetArgs, ctx: ToolContext) -> str:
        with self._memory(ctx) as memory:
            record = memory.get(args.id)
        return f"forget {record.id}: {record.text[:200]}"

    def run(self, args: ForgetArgs, ctx: ToolContext) -> ToolResult:
        with self._memory(ctx) as memory:
            record = memory.forget(args.id)
        return ToolResult(ok=True, output=f"forgot {record.id}", data=record.to_dict())


def tools(memory: MemoryFactory | None = None) -> tuple[Tool[Any], ...]:
    """The memory tools over ``memory`` (a factory of open ``Memory`` objects; None: the
    memory of each call's settings)."""
    return (MemoryRemember(memory), MemoryRecall(memory), MemoryForget(memory))


TOOLS: tuple[Tool[Any], ...] = tools()
