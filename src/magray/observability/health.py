"""Readiness checks shared by ``/readyz`` and ``magray health``.

Each check returns ``Check(name, ok, detail)``; a check that cannot run is a failed check
with the reason, never an exception.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def _store(rt: Runtime) -> Check:
    try:
        rt.memory.backend.layer_stats()
    except Exception as exc:
        return Check("store", False, f"the memory store cannot be read: {exc}")
    return Check("store", True, "open")


def _indexes(rt: Runtime) -> Check:
    try:
        stats = rt.memory.stats()
    except Exception as exc:
        return Check("indexes", False, f"the indexes cannot be read: {exc}")
    index = stats.get("index") or {}
    if "error" in index:
        return Check("indexes", False, str(index["error"]))
    bad = [
        f"{layer}: {row['searchable']} searchable of {row['expected']} stored"
        for layer, row in index.items()
        if isinstance(row, dict) and row.get("searchable") != row.get("expected")
    ]
    if bad:
        return Check("indexes", False, "; ".join(bad))
    total = sum(int(row["records"]) for row in stats["layers"].values())
    return Check("indexes", True, f"{total} record(s), indexes match the store")


def _embedder(rt: Runtime) -> Check:
    try:
        embedder = rt.memory.embedder
        embedder.embed_queries(["health check"])
    except Exception as exc:
        return Check("embedding_model", False, str(exc))
    return Check("embedding_model", True, f"{embedder.model_id} ({embedder.dim}-d)")


def _provider(rt: Runtime) -> Check:
    try:  # from the ledger and the key file: never waits for a run on the LLM thread
        rows = rt.router.describe()
    except Exception as exc:
        return Check("llm_provider", False, str(exc))
    default = next((r for r in rows if r["default"]), None)
    if default is None:
        return Check("llm_provider", False, "no default LLM provider is configured")
    name, breaker, key = default["name"], default["breaker"], default["key"]
    ok = breaker != "open" and key != "missing"
    return Check("llm_provider", ok, f"{name}: breaker {breaker}, key {key}")


def readiness(
    rt: Runtime,
    *,
    lock: Any = None,
) -> list[Check]:
    """Store open, indexes consistent, embedding model loaded, default provider usable.

    ``lock`` (when given) is held around the memory checks.
    """
    with lock if lock is not None else nullcontext():
        memory_checks = [_store(rt), _indexes(rt), _embedder(rt)]
    return [*memory_checks, _provider(rt)]


def report(checks: list[Check]) -> dict[str, Any]:
    """``{"ok", "checks": [...]}`` as ``/readyz`` and ``magray health --json`` print it."""
    return {"ok": all(c.ok for c in checks), "checks": [c.to_json() for c in checks]}
