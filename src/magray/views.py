"""JSON views of core results: the one shape that the CLI's ``--json`` and the server share.

Every function turns one core value into plain JSON data (dicts, lists, strings, numbers);
``magray memory search --json`` and ``POST /v1/memories/search`` print the same thing
because both call :func:`search_json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from magray.agent.session import AskResult
    from magray.memory.records import Hit, Record
    from magray.tasks.model import Task


def iso(ts: float | None) -> str | None:
    """Unix seconds as ``2026-01-31T14:00:00Z``; None when absent or not a representable date."""
    if ts is None:
        return None
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return None


def record_json(record: Record) -> dict[str, Any]:
    """One record as ``memory get --json`` prints it."""
    src = record.source
    return {
        "id": record.id,
        "text": record.text,
        "layer": str(record.layer),
        "kind": record.kind,
        "tags": list(record.tags),
        "project": record.project,
        "session": record.session,
        "source": None
        if src is None
        else {
            "uri": src.uri,
            "start": src.start,
            "end": src.end,
            "line_start": src.line_start,
            "line_end": src.line_end,
        },
        "created_at": iso(record.created_at),
        "occurred_at": iso(record.occurred_at),
        "updated_at": iso(record.updated_at),
        "last_access_at": iso(record.last_access_at),
        "access_count": record.access_count,
        "importance": record.importance,
        "pinned": record.pinned,
        "promotion_score": record.promotion_score,
        "embedding_model": record.embedding_model,
    }


def hit_json(hit: Hit) -> dict[str, Any]:
    """One search hit (with its explanation when the query asked for one)."""
    r = hit.record
    out: dict[str, Any] = {
        "id": r.id,
        "text": r.text,
        "layer": str(r.layer),
        "score": hit.score,
        "kind": r.kind,
        "tags": list(r.tags),
        "project": r.project,
        "created_at": iso(r.created_at),
        "occurred_at": iso(r.occurred_at),
        "access_count": r.access_count,
    }
    if r.source is not None:
        out["source"] = {"uri": r.source.uri, "line_start": r.source.line_start}
    e = hit.explanation
    if e is not None:
        out["explain"] = {
            "vector_rank": e.vector_rank,
            "vector_score": e.vector_score,
            "keyword_rank": e.keyword_rank,
            "keyword_score": e.keyword_score,
            "fused_score": e.fused_score,
            "layer_weight": e.layer_weight,
            "recency_factor": e.recency_factor,
            "rerank_score": e.rerank_score,
            "context_score": e.context_score,
        }
    return out


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
    """An answer as ``magray ask --json`` prints it."""
    return {
        "answer": result.answer,
        "provider": result.provider,
        "model": result.model,
        "conversation_id": result.conversation_id,
        "memories": [
            {"id": m.id, "layer": str(m.layer), "score": m.score} for m in result.memories
        ],
        "cited": result.cited,
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
        },
        "latency_ms": round(result.latency_ms, 1),
        "finish_reason": result.finish_reason,
        "notes": result.notes,
    }


def task_json(task: Task) -> dict[str, Any]:
    """One task as ``tasks show --json`` prints it."""
    return {
        "id": task.id,
        "title": task.title,
        "notes": task.notes,
        "state": task.state.value,
        "priority": task.priority,
        "depends_on": list(task.depends_on),
        "memory": list(task.memory_ids),
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "done_at": iso(task.done_at),
    }
