"""The Health page: readiness checks, request rate and recall latency over the last hour
(sampled from the server's own metrics), records per layer over time, provider breakers,
token usage and cost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

if TYPE_CHECKING:
    from magray.server.ui.app import Ui
    from magray.server.ui.session import User

WIDTH, HEIGHT = 600.0, 80.0


def spark(values: Sequence[float | None], times: Sequence[float]) -> dict[str, Any]:
    """An SVG polyline (in a WIDTH×HEIGHT box) and the figures its label needs."""
    known = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
    if not known:
        return {"points": "", "last": None, "peak": None, "count": 0}
    t0 = min(t for t, _ in known)
    span = max(max(t for t, _ in known) - t0, 1.0)
    peak = max(v for _, v in known) or 1.0
    points = " ".join(
        f"{(t - t0) / span * WIDTH:.1f},{HEIGHT - v / peak * (HEIGHT - 4):.1f}" for t, v in known
    )
    return {"points": points, "last": known[-1][1], "peak": peak, "count": len(known)}


async def health(request: Request, ui: Ui, user: User) -> Response:
    api = ui.api(request, user)
    ready = await api.get("/readyz")
    providers = await api.get("/v1/providers")
    usage = await api.get("/v1/usage", days=7)
    points, latest = await ui.sampler.view(user.tenant)
    times = [p.at for p in points]
    layers = sorted({layer for p in points for layer in p.records})
    charts = {
        "rate": spark([p.request_rate for p in points], times),
        "recall": spark([p.recall_ms for p in points], times),
        "layers": {layer: spark([p.records.get(layer) for p in points], times) for layer in layers},
    }
    rows = usage.json() if usage.ok else []
    totals = {
        "calls": sum(r.get("calls", 0) for r in rows),
        "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in rows),
        "completion_tokens": sum(r.get("completion_tokens", 0) for r in rows),
        "cost_usd": sum(r.get("cost_usd", 0.0) for r in rows),
    }
    return ui.render(
        request,
        "health.html",
        user,
        ready=ready.json() if ready.body else {},
        ready_ok=ready.ok,
        providers=providers.json() if providers.ok else [],
        providers_error=None if providers.ok else providers.problem(),
        usage=rows,
        totals=totals,
        charts=charts,
        requests_total=int(latest.requests),
        recall_count=int(latest.recall_count),
        samples=len(ui.sampler.samples),
        interval=ui.sampler.interval,
        width=WIDTH,
        height=HEIGHT,
    )


def routes(page: Callable[[Any], Callable[[Request], Awaitable[Response]]]) -> list[Route]:
    return [Route("/ui/health", page(health))]
