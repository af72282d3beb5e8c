"""Calling a tool under the policy: validate, decide, ask, preview or run, and audit it all."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from magray.errors import DeniedError, MagrayError
from magray.tools.audit import AuditLog
from magray.tools.base import Tool, ToolContext, ToolResult
from magray.tools.policy import Action, Policy

#: asks a person to approve a call: (tool name, preview) -> approved?
Confirm = Callable[[str, str], bool]


@dataclass(frozen=True, slots=True)
class Invocation:
    """The outcome of one call: the decision taken and the tool's result."""

    tool: str
    decision: str
    reason: str
    result: ToolResult
    duration_ms: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "decision": self.decision,
            "reason": self.reason,
            "dry_run": self.dry_run,
            "duration_ms": self.duration_ms,
            **self.result.to_dict(),
        }


def invoke(
    tool: Tool[Any],
    raw_args: Mapping[str, Any],
    ctx: ToolContext,
    policy: Policy,
    audit: AuditLog,
    confirm: Confirm | None = None,
) -> Invocation:
    """Run ``tool`` with ``raw_args`` if the policy lets it.

    ``confirm`` answers asks; without one (non-interactive) an ask is a denial.

    Raises:
        UsageError: the arguments do not fit the tool's schema.
        DeniedError: the policy (or the person asked) refused the call.
        ToolError: the tool could not do what was asked.
    """
    args = tool.parse(raw_args)
    decision = policy.decide(tool, args, ctx)
    action, reason = decision.action, decision.reason
    if action is Action.ASK and not policy.mode.dry_run:
        if policy.mode.yes:
            action, reason = Action.ALLOW, f"{reason}; approved by --yes"
        elif confirm is None:
            action = Action.DENY
            reason = (
                f"{tool.name} needs approval ({reason}) and nobody can be asked; "
                f"rerun with --yes or add `magray policy allow {tool.name}`"
            )
        else:
            try:
                shown = tool.preview(args, ctx)
            except MagrayError as exc:
                audit.record(tool.name, raw_args, "ask", "error", detail=exc.message)
                raise
            if confirm(tool.name, shown):
                action, reason = Action.ALLOW, f"{reason}; approved by the user"
            else:
                action, reason = Action.DENY, f"{reason}; refused by the user"
    if action is Action.DENY:
        audit.record(tool.name, raw_args, "deny", "denied", detail=reason)
        raise DeniedError(f"denied: {tool.name}: {reason.rstrip('.')}.")
    if policy.mode.dry_run:
        try:
            shown = tool.preview(args, ctx)
        except MagrayError as exc:
            audit.record(tool.name, raw_args, action.value, "error", detail=exc.message)
            raise
        audit.record(tool.name, raw_args, action.value, "dry_run", detail=reason)
        result = ToolResult(ok=True, output=shown, data={"preview": shown})
        return Invocation(tool.name, action.value, reason, result, dry_run=True)
    started = time.monotonic()
    try:
        result = tool.run(args, ctx)
    except MagrayError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        outcome = "denied" if isinstance(exc, DeniedError) else "error"
        audit.record(tool.name, raw_args, action.value, outcome, elapsed, exc.message)
        raise
    elapsed = int((time.monotonic() - started) * 1000)
    outcome = "ok" if result.ok else "failed"
    audit.record(tool.name, raw_args, action.value, outcome, elapsed, result.error or reason)
    return Invocation(tool.name, action.value, reason, result, elapsed)
