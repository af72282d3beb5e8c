"""The Memory page: layers, search with explanations, a record's detail, add, forget,
promote and expire (a dry run first, then apply)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from magray.server.ui.app import Ui
    from magray.server.ui.session import User

LAYERS = ("interact", "insights", "assets")
MODES = ("hybrid", "vector", "keyword")


def _layers(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Counts and bytes per layer from ``/v1/memories/stats``, whatever its nesting."""
    per = stats.get("layers") if isinstance(stats.get("layers"), dict) else {}
    rows = []
    for name in LAYERS:
        row = per.get(name, {}) if isinstance(per, dict) else {}
        if not isinstance(row, dict):
            row = {"records": row}
        rows.append(
            {
                "name": name,
                "records": row.get("records", 0) or 0,
                "bytes": (row.get("text_bytes", 0) or 0) + (row.get("vector_bytes", 0) or 0),
                "pinned": row.get("pinned", 0) or 0,
            }
        )
    return rows


async def memory(request: Request, ui: Ui, user: User) -> Response:
    api = ui.api(request, user)
    stats = await api.get("/v1/memories/stats")
    recent = await api.get("/v1/memories", limit=20)
    return ui.render(
        request,
        "memory.html",
        user,
        layers=_layers(stats.json() if stats.ok else {}),
        stats_error=None if stats.ok else stats.problem(),
        recent=recent.json()["records"] if recent.ok else [],
        modes=MODES,
        all_layers=LAYERS,
        flash=request.query_params.get("flash"),
    )


def _search_body(params: Any) -> dict[str, Any]:
    raw_k = params.get("k", "").strip() or "10"
    try:
        k: int | str = int(raw_k)  # a form's text: "-1" is the integer -1, out of range
    except ValueError:  # not a whole number ("abc", "1e3", "²"): the API says so
        k = raw_k
    body: dict[str, Any] = {"query": params.get("query", "").strip(), "k": k, "explain": True}
    if params.get("mode") in MODES:
        body["mode"] = params["mode"]
    layers = [x for x in params.getlist("layer") if x in LAYERS]
    if layers:
        body["layers"] = layers
    tags = [t.strip() for t in params.get("tags", "").split(",") if t.strip()]
    if tags:
        body["tags"] = tags
    for name in ("kind", "project", "created_after", "created_before"):
        if params.get(name, "").strip():
            body[name] = params[name].strip()
    return body


async def search(request: Request, ui: Ui, user: User) -> Response:
    body = _search_body(request.query_params)
    if not body["query"]:
        return ui.render(
            request, "_hits.html", user, hits=None, message="Type something to search for."
        )
    answer = await ui.api(request, user).post("/v1/memories/search", body)
    if not answer.ok:
        return ui.render(request, "_hits.html", user, hits=None, message=answer.problem())
    hits = answer.json()["hits"]
    n = max(len(hits), 1)
    for hit in hits:
        e = hit.get("explain") or {}
        # Bars: a rank fills more the nearer it is to the top; weights and recency as given.
        hit["bars"] = [
            ("vector rank", e.get("vector_rank"), _rank_fill(e.get("vector_rank"), n)),
            ("BM25 rank", e.get("keyword_rank"), _rank_fill(e.get("keyword_rank"), n)),
            ("layer weight", e.get("layer_weight"), _clamp(e.get("layer_weight"))),
            ("recency", e.get("recency_factor"), _clamp(e.get("recency_factor"))),
        ]
    return ui.render(request, "_hits.html", user, hits=hits, query=body["query"])


def _rank_fill(rank: Any, n: int) -> float:
    if not isinstance(rank, int | float) or rank < 1:
        return 0.0
    return max(0.05, 1.0 - (float(rank) - 1) / max(n, 10))


def _clamp(value: Any) -> float:
    if not isinstance(value, int | float):
        return 0.0
    return max(0.0, min(1.0, float(value)))


async def record(request: Request, ui: Ui, user: User) -> Response:
    rid = request.path_params["id"]
    answer = await ui.api(request, user).get(f"/v1/memories/{rid}")
    if not answer.ok:
        return ui.error(request, user, answer.status, answer.problem())
    rec = answer.json()
    return ui.render(
        request,
        "record.html",
        user,
        rec=rec,
        why=_why(rec),
        flash=request.query_params.get("flash"),
    )


def _why(rec: dict[str, Any]) -> list[str]:
    """Plain words for the promotion score's inputs the record carries."""
    n = rec.get("access_count", 0)
    out = [
        f"recalled {n} time{'' if n == 1 else 's'}"
        + (f", last at {rec['last_access_at']}" if rec.get("last_access_at") else "")
    ]
    out.append(f"importance {rec.get('importance', 0):.2f}")
    if rec.get("pinned"):
        out.append("pinned: never expires, always kept")
    out.append(f"layer {rec.get('layer')}; created {rec.get('created_at')}")
    return out


async def add(request: Request, ui: Ui, user: User) -> Response:
    form = await request.form()
    text = str(form.get("text") or "").strip()
    body: dict[str, Any] = {
        "text": text,
        "layer": str(form.get("layer") or "interact"),
        "tags": [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()],
        "kind": str(form.get("kind") or "note").strip() or "note",
        "pin": form.get("pin") == "on",
    }
    if str(form.get("project") or "").strip():
        body["project"] = str(form["project"]).strip()
    answer = await ui.api(request, user).post("/v1/memories", body)
    if not answer.ok:
        return ui.error(request, user, answer.status, answer.problem())
    made = answer.json()
    return RedirectResponse(f"/ui/memory/{made['id']}?flash=Remembered.", status_code=303)


async def forget(request: Request, ui: Ui, user: User) -> Response:
    rid = request.path_params["id"]
    answer = await ui.api(request, user).delete(f"/v1/memories/{rid}")
    if not answer.ok:
        return ui.error(request, user, answer.status, answer.problem())
    return RedirectResponse(f"/ui/memory?flash=Forgot {rid}.", status_code=303)


async def lifecycle(request: Request, ui: Ui, user: User) -> Response:
    action = request.path_params["action"]
    if action not in ("promote", "expire"):
        return ui.error(request, user, 404, "only promote and expire exist.")
    form = await request.form()
    apply = form.get("apply") == "1"
    answer = await ui.api(request, user).post(
        f"/v1/memories/{action}", None, dry_run="false" if apply else "true"
    )
    if not answer.ok:
        return ui.render(request, "_lifecycle.html", user, action=action, error=answer.problem())
    return ui.render(
        request, "_lifecycle.html", user, action=action, report=answer.json(), applied=apply
    )


def routes(page: Callable[[Any], Callable[[Request], Awaitable[Response]]]) -> list[Route]:
    return [
        Route("/ui/memory", page(memory)),
        Route("/ui/memory/search", page(search)),
        Route("/ui/memory/add", page(add), methods=["POST"]),
        Route("/ui/memory/lifecycle/{action}", page(lifecycle), methods=["POST"]),
        Route("/ui/memory/{id}", page(record)),
        Route("/ui/memory/{id}/forget", page(forget), methods=["POST"]),
    ]
