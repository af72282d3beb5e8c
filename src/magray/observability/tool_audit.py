"""The agent's tool audit joined to the hash chain: every tool row is also a chain entry.

``ChainedAuditLog`` is the tool audit log of :mod:`magray.tools.audit` (its own table stays
as it was, for ``magray tools audit``) that also appends each decision to the
:class:`~magray.observability.audit_chain.AuditChain` of the home, so ``magray audit verify``
covers what the agent did as well as what the API changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from magray.observability.audit_chain import AuditChain
from magray.tools.audit import AuditLog, args_digest


class ChainedAuditLog(AuditLog):
    """A tool audit log whose rows also enter the hash chain (actor ``agent``)."""

    def __init__(self, path: Path, chain: AuditChain, tenant: str) -> None:
        super().__init__(path)
        self.chain = chain
        self.tenant = tenant

    def record(
        self,
        tool: str,
        args: Mapping[str, Any],
        decision: str,
        outcome: str,
        duration_ms: int = 0,
        detail: str = "",
    ) -> None:
        super().record(tool, args, decision, outcome, duration_ms, detail)
        self.chain.append(
            tenant=self.tenant,
            actor="agent",
            action=f"tool {tool}",
            target=args_digest(args),
            outcome=f"{decision}/{outcome}",
            detail=json.dumps({"duration_ms": duration_ms, "detail": detail[:500]}),
        )


def tool_audit_log(data_dir: Path, tenant: str = "local") -> ChainedAuditLog:
    """The tool audit log of the home at ``data_dir``, joined to that home's chain."""
    from magray.observability.audit_chain import chain_file
    from magray.tools.audit import audit_file

    return ChainedAuditLog(audit_file(data_dir), AuditChain(chain_file(data_dir)), tenant)
