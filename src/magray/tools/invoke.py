"""Calling a tool under the policy: validate, decide, ask, preview or run, and audit it all.

The tool runs with ``ToolContext.check_redirect`` set to the policy's decision for a
redirect to another host, settled like the call's own (``--yes``, ``confirm``, else deny);
a refused hop raises ``DeniedError`` from ``run`` and is audited as ``denied``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from magray.errors import DeniedError, MagrayError, ToolError
from magray.tools.audit import AuditLog
from magray.tools.base import RedirectCheck, Tool, ToolContext, ToolResult
from magray.tools.netguard import url_host
from magray.tools.policy import Action, Decision, Policy

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


def _settle(
    decision: Decision,
    tool: str,
    policy: Policy,
    confirm: Confirm | None,
    show: Callable[[], str],
    rule_hint: str,
) -> tuple[Action, str]:
    """``decision`` with an ask turned into allow or deny (unless the run is a dry run).

    ``--yes`` approves; else ``confirm`` is shown ``show()``; with nobody to ask it is a
    denial whose reason names the rule to add (``magray policy allow TOOL{rule_hint}``).
    """
    action, reason = decision.action, decision.reason
    if action is not Action.ASK or policy.mode.dry_run:
        return action, reason
    if policy.mode.yes:
        return Action.ALLOW, f"{reason}; approved by --yes"
    if confirm is None:
        return Action.DENY, (
            f"{tool} needs approval ({reason}) and nobody can be asked; "
            f"rerun with --yes or add `magray policy allow {tool}{rule_hint}`"
        )
    if confirm(tool, show()):
        return Action.ALLOW, f"{reason}; approved by the user"
    return Action.DENY, f"{reason}; refused by the user"


def _redirect_check(
    tool: Tool[Any], args: Any, ctx: ToolContext, policy: Policy, confirm: Confirm | None
) -> RedirectCheck:
    """The policy's word on a redirect to ``url``: decided as a call to its host would be."""

    def check(url: str) -> None:
        host = url_host(url)
        decision = policy.decide(tool, args, ctx, hosts=[host])
        action, reason = _settle(
            decision,
            tool.name,
            policy,
            confirm,
            lambda: f"follow a redirect: GET {url}",
            f" --host {host}",
        )
        if action is Action.DENY:
            raise DeniedError(f"denied: {tool.name}: redirect to {host}: {reason.rstrip('.')}.")

    return check


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
        DeniedError: the policy (or the person asked) refused the call or a redirect hop.
        ToolError: the tool could not do what was asked.
    """
    args = tool.parse(raw_args)
    decision = policy.decide(tool, args, ctx)
    try:
        action, reason = _settle(
            decision, tool.name, policy, confirm, lambda: tool.preview(args, ctx), ""
        )
    except MagrayError as exc:
        audit.record(tool.name, raw_args, "ask", "error", detail=exc.message)
        raise
    if action is Action.DENY:
        audit.record(tool.name, raw_args, "deny", "denied", detail=reason)
        given = decision.parts if reason == decision.reason else ()  # the policy's own words
        raise DeniedError(f"denied: {tool.name}: ", *(given or (reason.rstrip("."),)), ".")
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
    guarded = replace(
        ctx,
        check_redirect=_redirect_check(tool, args, ctx, policy, confirm),
        path_filter=policy.path_filter(tool.name),
    )
    try:
        result = tool.run(args, guarded)
    except MagrayError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        # the final decision: a guard inside the tool (SSRF, a redirect hop) that refused
        # the call turns an allow into a deny
        if isinstance(exc, DeniedError):
            audit.record(tool.name, raw_args, "deny", "denied", elapsed, exc.message)
        else:
            audit.record(tool.name, raw_args, action.value, "error", elapsed, exc.message)
        raise
    except OSError as exc:
        elapsed = int((time.monotonic() - started) * 1000)
        message = f"{tool.name} failed: {exc.strerror or exc}; check the path and try again."
        audit.record(tool.name, raw_args, action.value, "error", elapsed, message)
        raise ToolError(message) from None
    elapsed = int((time.monotonic() - started) * 1000)
    outcome = "ok" if result.ok else "failed"
    audit.record(tool.name, raw_args, action.value, outcome, elapsed, result.error or reason)
    return Invocation(tool.name, action.value, reason, result, elapsed)
