"""JSON views of core results: the one shape that the CLI's ``--json`` and the server share.

Every function turns one core value into plain JSON data (dicts, lists, strings, numbers);
``magray memory search --json`` and ``POST /v1/memories/search`` print the same thing
because both call :func:`search_json`. A domain value's own shape is its ``to_dict()``
(``Record``, ``Hit``, ``Task``, ``AskResult``, ``Turn``); the functions here name those
shapes for the CLI and the server and compose reports out of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from magray.timefmt import iso as iso

if TYPE_CHECKING:
    from magray.agent.session import AskResult
    from magray.memory.records import Hit, Record
    from magray.tasks.model import Task


def record_json(record: Record) -> dict[str, Any]:
    """One record as ``memory get --json`` prints it (:meth:`Record.to_dict`)."""
    return record.to_dict()


def hit_json(hit: Hit) -> dict[str, Any]:
    """One search hit, with its explanation when the query asked for one (:meth:`Hit.to_dict`)."""
    return hit.to_dict()


def search_json(query: str, hits: list[Hit]) -> dict[str, Any]:
    """A search result as ``memory search --json`` prints it."""
    return {"query": query, "hits": [hit_json(h) for h in hits]}


def texts_of(memory: Any, ids: list[str]) -> dict[str, str]:
    """The text of each record still in the store (a merged or expired one is gone)."""
    from magray.errors import NotFoundError

    out: dict[str, str] = {}
    for rid in ids:
        try:
            out[rid] = memory.get(rid).text
        except NotFoundError:
            continue
    return out


def decision_json(d: Any, texts: dict[str, str] | None = None) -> dict[str, Any]:
    """One promotion decision (a ``lifecycle`` decision) with the record's text if known."""
    return {
        "id": d.record_id,
        "text": (texts or {}).get(d.record_id),
        "from": str(d.from_layer),
        "to": None if d.to_layer is None else str(d.to_layer),
        "score": round(d.score, 4),
        "rule_score": round(d.rule_score, 4),
        "model_score": None if d.model_score is None else round(d.model_score, 4),
        "reasons": list(d.reasons),
    }


def promote_json(
    report: Any, *, dry_run: bool, texts: dict[str, str] | None = None
) -> dict[str, Any]:
    """A promotion run as ``memory promote --json`` prints it."""
    return {
        "dry_run": dry_run,
        "model": report.model,
        "promoted": [decision_json(d, texts) for d in report.promoted],
        "kept": [decision_json(d, texts) for d in report.kept],
    }


def expire_json(
    report: Any, *, dry_run: bool, texts: dict[str, str] | None = None
) -> dict[str, Any]:
    """An expiry run as ``memory expire --json`` prints it."""
    return {
        "dry_run": dry_run,
        "expired": [
            {
                "id": e.record_id,
                "text": (texts or {}).get(e.record_id),
                "layer": str(e.layer),
                "age_hours": round(e.age_hours, 2),
                "ttl_hours": e.ttl_hours,
                "reason": e.reason,
            }
            for e in report.expired
        ],
    }


def ingest_json(
    report: Any, *, layer: str, project: str | None, truncated: int = 0
) -> dict[str, Any]:
    """An ingest run as ``magray ingest --json`` prints it (``truncated``: texts cut to fit)."""
    return {
        "layer": layer,
        "project": project,
        "files": {
            "added": report.files_added,
            "updated": report.files_updated,
            "unchanged": report.files_unchanged,
            "removed": report.files_removed,
        },
        "chunks": {
            "added": report.chunks_added,
            "kept": report.chunks_kept,
            "removed": report.chunks_removed,
        },
        "skipped": [{"path": uri, "reason": reason} for uri, reason in report.skipped],
        "truncated": truncated,
    }


def ask_json(result: AskResult) -> dict[str, Any]:
    """An answer as ``magray ask --json`` prints it (:meth:`AskResult.to_dict`)."""
    return result.to_dict()


def task_json(task: Task) -> dict[str, Any]:
    """One task as ``tasks show --json`` prints it (:meth:`Task.to_dict`)."""
    return task.to_dict()
