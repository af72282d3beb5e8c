"""The FastAPI application: services, error handlers, the guard and the routes.

``create_app(settings)`` is what ``magray serve`` runs (``factory()`` builds it from the
environment for uvicorn's ``--workers``). Tests pass an ``embedder`` to skip the model.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from magray import __version__
from magray.errors import MagrayError
from magray.observability.audit_chain import AuditChain, chain_file
from magray.observability.metrics import CountingEmbedder, Metrics
from magray.server import heap
from magray.server.auth import Authenticator
from magray.server.deps import Services
from magray.server.fast_search import FastSearch
from magray.server.guard import Guard
from magray.server.keys import KeyStore, keys_file
from magray.server.problems import (
    PROBLEM_JSON,
    Problem,
    body,
    from_magray,
    simple_errors,
    unparsable_body,
    validation_detail,
)
from magray.server.query_batch import QueryBatcher
from magray.server.ratelimit import TokenBuckets
from magray.server.tenants import TenantPool

if TYPE_CHECKING:
    from magray.config import Settings
    from magray.embed.base import Embedder

log = logging.getLogger("magray.server")


def _problem_response(p: Problem) -> JSONResponse:
    return JSONResponse(
        body(p.status, p.slug, p.title, p.detail),
        status_code=p.status,
        headers=p.headers,
        media_type=PROBLEM_JSON,
    )


def error_response(exc: Exception, metrics: Metrics) -> JSONResponse:
    """The problem response for an exception of a route (counted in the error metric):
    a :class:`Problem` as raised, a MAGRAY error by its class, anything else a 500."""
    if isinstance(exc, Problem):
        metrics.errors.labels(exc.slug).inc()
        return _problem_response(exc)
    if isinstance(exc, MagrayError):
        p = from_magray(exc)
        metrics.errors.labels(p.slug).inc()
        return _problem_response(p)
    log.error("unexpected %s: %s", type(exc).__name__, exc, exc_info=exc)
    metrics.errors.labels("internal").inc()
    return JSONResponse(
        body(
            500,
            "internal",
            "Internal error",
            f"unexpected {type(exc).__name__}; the server log has the details under this"
            " request id.",
        ),
        status_code=500,
        media_type=PROBLEM_JSON,
    )


def _install_handlers(app: FastAPI, metrics: Metrics) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return error_response(exc, metrics)

    async def on_magray(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MagrayError)
        return error_response(exc, metrics)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = list(exc.errors())
        metrics.errors.labels("invalid-request").inc()
        return JSONResponse(
            body(
                422,
                "invalid-request",
                "Malformed request",
                validation_detail(errors, request.headers.get("content-type")),
                errors=simple_errors(errors),
            ),
            status_code=422,
            media_type=PROBLEM_JSON,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = {
            404: "no such route; see /docs for the API.",
            405: "this route does not take that method; see /docs for the API.",
        }.get(exc.status_code, str(exc.detail))
        title = str(exc.detail)
        if exc.status_code == 400:  # the words of the HTTP or multipart parser: a detail
            title = "Malformed request"
        if detail == "There was an error parsing the body":  # FastAPI's words for bad bytes
            detail = unparsable_body(exc.__cause__)
        elif exc.status_code == 400 and not detail.rstrip(".").count(";"):
            detail = f"{detail.rstrip('.')}; fix the request and send it again."
        return JSONResponse(
            body(exc.status_code, f"http-{exc.status_code}", title, detail),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
            media_type=PROBLEM_JSON,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(exc, metrics)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(MagrayError, on_magray)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def create_app(settings: Settings, *, embedder: Embedder | None = None) -> Any:
    """The ASGI application (the FastAPI app wrapped in the guard)."""
    from magray.server import (
        routes_admin,
        routes_ask,
        routes_health,
        routes_memory,
        routes_misc,
        routes_runs,
    )

    metrics = Metrics()

    def wrap(inner: Embedder) -> Embedder:
        # The batcher outside the counter: the counter sees the texts the model embeds.
        return QueryBatcher(CountingEmbedder(inner, metrics.embedded))

    pool = TenantPool(settings, embedder=None if embedder is None else wrap(embedder), wrap=wrap)
    metrics.watch(pool.open)
    data_dir = settings.paths.data_dir
    svc = Services(
        settings=settings,
        tenants=pool,
        auth=Authenticator(
            KeyStore(keys_file(data_dir)),
            TokenBuckets(settings.server.rate, settings.server.burst),
            auth_on=settings.server.auth != "off",
        ),
        metrics=metrics,
        chain=AuditChain(chain_file(data_dir)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("magray server ready", extra={"version": __version__})
        heap.start()
        try:
            yield
        finally:
            heap.stop()
            runs = getattr(app.state, "runs", None)
            if runs is not None:  # a plan waiting for approval would hold the shutdown
                runs.refuse_waiting()
            pool.close()
            svc.auth.close()
            log.info("magray server stopped")

    app = FastAPI(
        title="MAGRAY",
        version=__version__,
        description="MAGRAY's three-layer memory, answers and tasks over HTTP. Every /v1 route"
        " needs 'Authorization: Bearer <key>' (see `magray auth create-key`).",
        lifespan=lifespan,
    )
    app.state.services = svc
    _install_handlers(app, metrics)
    app.include_router(routes_health.router)
    app.include_router(routes_memory.router)
    app.include_router(routes_ask.router)
    app.include_router(routes_misc.router)
    app.include_router(routes_runs.router)
    app.include_router(routes_admin.router)
    max_body = int(settings.server.max_body_mb * 1024 * 1024)
    guard = Guard(
        FastSearch(app, svc, on_error=lambda exc: error_response(exc, metrics)),
        metrics=metrics,
        chain=svc.chain,
        max_body=max_body,
        max_concurrency=settings.server.max_concurrency,
        queue_size=settings.server.queue_size,
    )
    guard.fastapi = app  # type: ignore[attr-defined]
    from magray.server.ui.site import with_dashboard

    return with_dashboard(guard)


def factory() -> Any:
    """``uvicorn --factory magray.server.app:factory``: the app over the environment's settings."""
    from magray.config import load_settings
    from magray.observability.logs import configure_json_logs

    configure_json_logs()
    return create_app(load_settings())
