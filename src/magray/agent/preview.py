"""What a plan will change, shown before anyone approves it: each acting step's preview.

A tool's ``preview`` is its dry run: a unified diff for a file write or edit, the exact
argv for a command or a git call. Steps that only read are left out. A long preview is cut
to ``max_lines`` with a line that says how many were left out; a step whose preview cannot
be made yet (say, it edits a file an earlier step creates) says why instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from magray.agent.plan import Plan
from magray.errors import MagrayError, Surface
from magray.tools.base import Risk, ToolContext
from magray.tools.registry import ToolRegistry

MAX_LINES = 40


@dataclass(frozen=True, slots=True)
class StepPreview:
    """The preview of one acting step (``cut``: lines left out of ``text``)."""

    id: str
    tool: str
    text: str
    cut: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tool": self.tool, "preview": self.text, "cut_lines": self.cut}


def shorten(text: str, max_lines: int = MAX_LINES) -> tuple[str, int]:
    """``text`` cut to ``max_lines`` lines, and how many lines were cut."""
    lines = text.rstrip("\n").splitlines()
    if len(lines) <= max_lines:
        return "\n".join(lines), 0
    return "\n".join(lines[:max_lines]), len(lines) - max_lines


def plan_previews(
    plan: Plan,
    registry: ToolRegistry,
    ctx: ToolContext,
    *,
    max_lines: int = MAX_LINES,
    surface: Surface = "cli",
) -> list[StepPreview]:
    """The previews of ``plan``'s steps that do more than read, in step order (a preview
    that cannot be made says why in the words of ``surface``)."""
    found = []
    for step in plan.steps:
        try:
            tool = registry.get(step.tool)
            args = tool.parse(step.args)
            if tool.risk_for(args) is Risk.READ:
                continue
            text = tool.preview(args, ctx)
        except (MagrayError, OSError, ValueError) as exc:
            reason = exc.message_for(surface) if isinstance(exc, MagrayError) else str(exc)
            text = f"(no preview before the earlier steps run: {reason})"
        short, cut = shorten(text, max_lines)
        found.append(StepPreview(step.id, step.tool, short, cut))
    return found


def render_previews(previews: list[StepPreview]) -> str:
    """The previews as text for a terminal: each under its step, indented."""
    blocks = []
    for p in previews:
        body = "\n".join("    " + line for line in p.text.splitlines())
        if p.cut:
            body += f"\n    … {p.cut} more line{'s' if p.cut != 1 else ''} not shown"
        blocks.append(f"  {p.id} ({p.tool}):\n{body}")
    return "\n".join(blocks)
