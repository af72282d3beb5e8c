"""The dashboard at ``/ui``: server-rendered pages (Jinja2) with htmx, over the ``/v1`` API.

Pages fetch everything through :class:`~magray.server.ui.api.Api` with the signed-in user's
key; the only routes of its own are sign-in and sign-out, the static files and the pages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from magray import __version__
from magray.server.ui import session
from magray.server.ui.api import Api
from magray.server.ui.sampler import Sampler
from magray.server.ui.session import User

HERE = Path(__file__).parent
Handler = Callable[[Request, "Ui", User], Awaitable[Response]]


@dataclass
class Ui:
    """What every page reaches: the API application, the services, templates, the sampler."""

    app: Any
    services: Any
    templates: Jinja2Templates
    sampler: Sampler

    def api(self, request: Request, user: User | None) -> Api:
        client = (request.client.host, request.client.port) if request.client else ("", 0)
        return Api(self.app, None if user is None else user.key, client)

    def render(
        self,
        request: Request,
        name: str,
        user: User | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        context.update(user=user, version=__version__, path=request.url.path)
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def error(self, request: Request, user: User | None, status: int, message: str) -> Response:
        return self.render(request, "error.html", user, status=status, code=status, message=message)


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in users; mutating requests must carry the CSRF token."""

    async def endpoint(request: Request) -> Response:
        ui: Ui = request.app.state.ui
        ui.sampler.ensure_running()
        user = session.current_user(request, ui.services.auth.keys)
        if user is None:
            target = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            if request.headers.get("hx-request"):
                return Response(
                    status_code=204, headers={"HX-Redirect": f"/ui/login?next={target}"}
                )
            return RedirectResponse(f"/ui/login?next={target}", status_code=303)
        if request.method != "GET" and not await session.csrf_ok(request, user):
            return ui.error(
                request,
                user,
                403,
                "the form has expired or came from another site; reload the page and try again.",
            )
        return await handler(request, ui, user)

    return endpoint


def _safe_next(value: str | None) -> str:
    return value if value and value.startswith("/ui") and "//" not in value else "/ui/memory"


async def login(request: Request) -> Response:
    ui: Ui = request.app.state.ui
    if request.method == "GET":
        return ui.render(
            request, "login.html", None, next=_safe_next(request.query_params.get("next"))
        )
    if not session.same_origin(request):
        return ui.error(request, None, 403, "sign in from this server's own page.")
    form = await request.form()
    key = str(form.get("key") or "").strip()
    target = _safe_next(str(form.get("next") or ""))
    user = session.lookup(key, ui.services.auth.keys)
    if user is None:
        return ui.render(
            request,
            "login.html",
            None,
            status=401,
            next=target,
            message="That API key is unknown or revoked; create one with"
            " `magray auth create-key --role reader --tenant NAME`.",
        )
    response = RedirectResponse(target, status_code=303)
    session.set_login(response, request, key)
    return response


async def logout(request: Request) -> Response:
    ui: Ui = request.app.state.ui
    user = session.current_user(request, ui.services.auth.keys)
    if user is not None and not await session.csrf_ok(request, user):
        return ui.error(request, user, 403, "reload the page and sign out again.")
    response = RedirectResponse("/ui/login", status_code=303)
    session.clear_login(response)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse("/ui/memory", status_code=303)


def create_ui(api: Any) -> Starlette:
    """The dashboard application over the API application ``api`` (the guarded FastAPI app)."""
    from magray.server.ui import pages_admin, pages_agent, pages_health, pages_memory

    services = api.fastapi.state.services
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["pct"] = lambda v: max(0.0, min(100.0, float(v or 0) * 100))
    routes: list[BaseRoute] = [
        Route("/ui", home),
        Route("/ui/", home),
        Route("/ui/login", login, methods=["GET", "POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
        Mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="static"),
        *pages_memory.routes(page),
        *pages_agent.routes(page),
        *pages_health.routes(page),
        *pages_admin.routes(page),
    ]
    app = Starlette(routes=routes)
    app.state.ui = Ui(api, services, templates, Sampler(services.metrics.render))
    return app
