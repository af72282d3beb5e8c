"""``/v1/memories``: remember, recall, get, list, forget, lifecycle, stats, verify, backup,
export; ``/v1/ingest`` for uploaded files. The same services and JSON as ``magray memory``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from magray.errors import UsageError
from magray.server.auth import Principal
from magray.server.deps import Admin, Reader, Services, Svc, Writer
from magray.server.schemas import (
    BatchIn,
    BatchOut,
    Forgotten,
    LayerName,
    MemoryIn,
    Name,
    RecordsOut,
    Remembered,
    SearchIn,
    SearchOut,
)

if TYPE_CHECKING:
    from magray.server.tenants import Tenant

router = APIRouter(prefix="/v1", tags=["memory"])
# A letter or digit of any script first, then those, '.', '_', '-' and spaces (no control,
# format or path characters); matched whole.
SAFE_NAME = re.compile(r"[^\W_][\w. -]{0,200}")
# File systems hold names of up to 255 bytes; the atomic write's temporary file adds
# ``.`` before and ``.PID.tmp`` after (up to 13 bytes).
MAX_NAME_BYTES = 230


def _new_record(item: MemoryIn) -> Any:
    from magray.memory.records import Layer, NewRecord

    return NewRecord(
        text=item.text,
        layer=Layer(item.layer),
        kind=item.kind,
        tags=tuple(item.tags),
        project=item.project,
        session=item.session,
        importance=item.importance,
        pinned=item.pin,
        occurred_at=_time(item.at, "at"),
    )


def _time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{name} wants an ISO date or time like 2026-01-31 or 2026-01-31T14:00 (got {value!r})."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@router.post("/memories", status_code=201, response_model=Remembered, summary="Remember a text.")
def add(item: MemoryIn, svc: Svc, who: Writer) -> dict[str, Any]:
    result = svc.tenant(who).memory.remember(_new_record(item))
    return result.to_dict()


@router.post(
    "/memories/batch", status_code=201, response_model=BatchOut, summary="Remember many texts."
)
def add_batch(batch: BatchIn, svc: Svc, who: Writer) -> dict[str, Any]:
    from magray.memory.ingest.remember import validate

    items = []
    for n, item in enumerate(batch.items):
        try:
            items.append(_new_record(item))
            validate(items[-1])  # as remember_many does, to say which item it is
        except UsageError as exc:
            raise UsageError(f"items.{n}: ", *exc.parts) from None
    results = svc.tenant(who).memory.remember_many(items)
    return {"results": [r.to_dict() for r in results]}


@router.post(
    "/memories/search",
    response_model=SearchOut,
    summary="Recall by meaning and keywords (as `magray memory search --json`).",
)
async def search(q: SearchIn, svc: Svc, who: Reader) -> Response:
    # Plain searches are answered by ``fast_search`` without this route's machinery; this
    # route answers the rest (and documents the route in OpenAPI).
    return await searched(q, svc, who)


async def searched(q: SearchIn, svc: Services, who: Principal) -> Response:
    """The answer to a search of ``who``, as JSON."""
    from magray.memory.records import Filters, Layer, Query, SearchMode
    from magray.views import search_json

    # The hot path of the server: the query's vector is made on the event loop's side (in a
    # batch with other searches) and only the recall itself takes a worker thread (and one
    # of the tenant's readers, not its lock).
    tenant = svc.tenants.opened(who.tenant)
    if tenant is None:  # opening a tenant reads files: in a worker thread
        tenant = await run_in_threadpool(svc.tenant, who)
    settings = tenant.runtime.settings
    filters = Filters(
        layers=tuple(Layer(x) for x in q.layers),
        tags=tuple(q.tags),
        kind=q.kind,
        project=q.project,
        session=q.session,
        created_after=_time(q.created_after, "created_after"),
        created_before=_time(q.created_before, "created_before"),
    )
    query = Query(
        text=q.query,
        k=q.k,
        mode=SearchMode(q.mode or settings.search.mode),
        filters=filters,
        rerank=settings.search.rerank if q.rerank is None else q.rerank,
        explain=q.explain,
    )
    started = time.perf_counter()
    # A reranked search takes the tenant's lock: a thread of the server's pool, so that it
    # never holds up the tenant's search threads.
    run: Any = _in_pool if query.rerank else tenant.search
    cached = None
    if query.mode is not SearchMode.KEYWORD and query.text.strip():
        # A query whose vector is cached needs no batch: one thread hop, not two.
        cached = await run(_recall_if_cached, svc, tenant, query)
        if cached is None:
            await _embed_ahead(svc, query.text)
    hits = cached if cached is not None else await run(tenant.recall, query)
    svc.metrics.recall_latency.labels(who.tenant).observe(time.perf_counter() - started)
    # Rendered here (the shape is ``SearchOut`` by construction): the response model
    # would validate and copy every hit again.
    data = search_json(query.text, hits)
    try:
        return JSONResponse(data)
    except ValueError:  # a score that is not finite: null, as the response model renders it
        return JSONResponse(SearchOut.model_validate(data).model_dump(mode="json"))


async def _in_pool(fn: Any, *args: Any) -> Any:
    return await run_in_threadpool(fn, *args)


def _recall_if_cached(svc: Services, tenant: Tenant, query: Any) -> list[Any] | None:
    """The recall, when the query's vector is in the embedding cache; else None."""
    from magray.server.query_batch import QueryBatcher

    embedder = svc.tenants.embedded()
    if isinstance(embedder, QueryBatcher) and embedder.ahead_from_cache(query.text):
        hits: list[Any] = tenant.recall(query)
        return hits
    return None


async def _embed_ahead(svc: Services, text: str) -> None:
    """The query's vector made before the tenant's lock, in a batch with other searches."""
    from magray.server.query_batch import QueryBatcher

    embedder = svc.tenants.embedded()
    if isinstance(embedder, QueryBatcher):
        await embedder.embed_ahead_async(text)


@router.get("/memories", response_model=RecordsOut, summary="List memories, newest first.")
def list_(
    svc: Svc,
    who: Reader,
    layer: Annotated[list[LayerName], Query()] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
    project: Annotated[Name, Query()] = None,
) -> dict[str, Any]:
    from magray.memory.records import Filters, Layer
    from magray.views import record_json

    filters = Filters(layers=tuple(Layer(x) for x in layer), project=project)
    records = svc.tenant(who).memory.list_records(filters, limit=limit, offset=offset)
    return {"records": [record_json(r) for r in records]}


@router.get("/memories/stats", summary="Records and bytes per layer, index health, model.")
def stats(svc: Svc, who: Reader) -> dict[str, Any]:
    data: dict[str, Any] = svc.tenant(who).memory.stats()
    data.pop("path", None)  # a server path is none of the client's business
    for row in (data.get("index") or {}).values():
        if isinstance(row, dict):
            row.pop("file", None)
    return data


@router.get("/memories/verify", summary="Check the store and its indexes.")
def verify(svc: Svc, who: Reader) -> dict[str, Any]:
    from magray.memory.maintenance import verify as run_verify

    tenant = svc.tenant(who)
    with tenant.lock:
        report = run_verify(tenant.runtime.memory)
    return {"ok": report.ok, "problems": report.problems, "checked": report.checked}


@router.post("/memories/promote", summary="Promote records up a layer (dry_run explains).")
def promote(svc: Svc, who: Writer, dry_run: Annotated[bool, Query()] = False) -> dict[str, Any]:
    from magray.memory.lifecycle.run import promote as run_promote
    from magray.views import promote_json, texts_of

    tenant = svc.tenant(who)
    with tenant.lock:
        memory = tenant.runtime.memory
        report = run_promote(memory, dry_run=dry_run)
        texts = texts_of(memory, [d.record_id for d in [*report.promoted, *report.kept]])
    return promote_json(report, dry_run=dry_run, texts=texts)


@router.post("/memories/expire", summary="Delete records whose TTL passed (dry_run lists).")
def expire(svc: Svc, who: Writer, dry_run: Annotated[bool, Query()] = False) -> dict[str, Any]:
    from magray.memory.lifecycle.run import expire as run_expire
    from magray.views import expire_json, texts_of

    tenant = svc.tenant(who)
    with tenant.lock:
        memory = tenant.runtime.memory
        planned = run_expire(memory, dry_run=True)
        texts = texts_of(memory, [e.record_id for e in planned.expired])
        report = planned if dry_run else run_expire(memory, dry_run=False)
    return expire_json(report, dry_run=dry_run, texts=texts)


@router.post("/memories/backup", summary="A consistent backup of the tenant's store (admin).")
def backup(svc: Svc, who: Admin) -> dict[str, Any]:
    from magray.memory.transfer.backup import backup as run_backup

    tenant = svc.tenant(who)
    with tenant.lock:
        manifest = run_backup(tenant.runtime.memory)
    return {"name": manifest.path.name, "records": manifest.records, **manifest.to_json()}


@router.get(
    "/memories/export",
    summary="Export the tenant's memories as JSON Lines.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def export(
    svc: Svc,
    who: Reader,
    layer: Annotated[list[LayerName], Query()] = [],  # noqa: B006
    project: Annotated[Name, Query()] = None,
    vectors: Annotated[bool, Query()] = False,
) -> StreamingResponse:
    import tempfile

    from magray.memory.records import Filters, Layer
    from magray.memory.transfer.jsonl import export as run_export

    tenant = svc.tenant(who)
    filters = Filters(layers=tuple(Layer(x) for x in layer), project=project)
    # Written under the tenant's lock into a spooled file (memory up to 8 MiB, then the
    # tenant's own folder), then streamed without the lock.
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115  (closed when the stream ends)
        max_size=8 * 1024 * 1024,
        mode="w+",
        encoding="utf-8",
        newline="\n",
        dir=str(tenant.runtime.paths.data_dir),
    )
    try:
        with tenant.lock:
            out = cast("TextIO", spool)  # a text file object, as export wants
            run_export(tenant.runtime.memory, out, filters=filters, with_vectors=vectors)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise

    def lines() -> Iterator[bytes]:
        try:
            for line in spool:
                yield line.encode("utf-8")
        finally:
            spool.close()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/memories/{id}", summary="One memory by id (or unique prefix).")
def get(id: str, svc: Svc, who: Reader) -> dict[str, Any]:
    from magray.views import record_json

    return record_json(svc.tenant(who).memory.get(id))


@router.delete("/memories/{id}", response_model=Forgotten, summary="Forget one memory.")
def forget(id: str, svc: Svc, who: Writer) -> dict[str, Any]:
    record = svc.tenant(who).memory.forget(id)
    return {"id": record.id, "forgotten": True}


@router.post("/ingest", summary="Ingest uploaded files (chunked, incremental by content hash).")
def ingest(
    svc: Svc,
    who: Writer,
    files: Annotated[list[UploadFile], File(description="Text files to ingest.")],
    layer: Annotated[LayerName, Form()] = "assets",
    project: Annotated[Name, Form()] = None,
) -> dict[str, Any]:
    from magray.fileio import write_atomic
    from magray.memory.ingest.pipeline import ingest as run_ingest
    from magray.memory.records import Layer
    from magray.views import ingest_json

    tenant = svc.tenant(who)
    uploads = tenant.runtime.paths.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for upload in files:
        name = Path(upload.filename or "").name
        if not SAFE_NAME.fullmatch(name):
            raise UsageError(
                f"invalid file name {upload.filename!r}; use letters, digits, '.', '_', '-'"
                " and spaces, starting with a letter or digit."
            )
        size = len(name.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            raise UsageError(
                f"the file name {name[:40]!r}... has {size} bytes in UTF-8, more than the limit"
                f" of {MAX_NAME_BYTES}; rename the file with a shorter name."
            )
        if name in names:
            raise UsageError(
                f"the file name {name!r} is given twice; rename one, or upload it in another"
                " request."
            )
        names.append(name)
    saved = [uploads / name for name in names]
    with tenant.lock:  # a concurrent upload of the same name waits; a file is whole or old
        for upload, target in zip(files, saved, strict=True):
            write_atomic(target, upload.file.read())
        before = _truncated()
        report = run_ingest(
            tenant.runtime.memory, saved, layer=Layer(layer), project=project, root=uploads
        )
        tenant.runtime.memory.sync_indexes()
        truncated = _truncated() - before  # other tenants may embed meanwhile: an estimate
    return ingest_json(report, layer=layer, project=project, truncated=max(0, truncated))


def _truncated() -> int:
    import sys

    onnx = sys.modules.get("magray.embed.onnx")  # loaded only when something was embedded
    return int(onnx.truncated_count()) if onnx is not None else 0
