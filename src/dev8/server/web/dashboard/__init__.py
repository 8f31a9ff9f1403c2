"""The dashboard: server-rendered pages (Jinja2, autoescaped) with htmx for the live parts,
both served by the app itself. Pages authenticate with the ``dev8_session`` cookie, every
change they make carries the session's CSRF token, and no page runs inline script."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from dev8.core.errors import Unauthorized
from dev8.server.context import ServerContext
from dev8.server.web.dashboard import account, admin, backups, detail, stream, workspaces
from dev8.server.web.dashboard.render import (
    ASSETS,
    ICON,
    Asset,
    asset_response,
    failure,
    is_htmx,
)
from dev8.server.web.dashboard.scope import PageError
from dev8.server.web.dashboard.security import CsrfTokens, SignInRequired
from dev8.server.web.sessions import SAFE_METHODS, login_redirect, requested_path, safe_next

SIGN_IN = "sign in first: open /login in the browser"
static_router = APIRouter(include_in_schema=False)


def _static_route(asset: Asset) -> None:
    async def serve() -> Response:
        return asset_response(asset)

    static_router.add_api_route(f"/static/{asset.name}", serve, methods=["GET"])


for _asset in ASSETS.values():
    _static_route(_asset)


@static_router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask for it on pages that name no icon (the sign-in page, JSON answers)."""
    return RedirectResponse(ASSETS[ICON].url, status_code=301)


async def _sign_in(request: Request, _exc: Exception) -> Response:
    """A page is sent to the sign-in page and back; htmx is told to go there (its page's
    session ended); anything else is refused."""
    if is_htmx(request):
        back = safe_next(_path_of(request.headers.get("hx-current-url", "")))
        response = failure(request, Unauthorized(SIGN_IN))
        response.headers["HX-Redirect"] = login_redirect(back).headers["location"]
        return response
    if request.method in SAFE_METHODS:
        return login_redirect(requested_path(request))
    return failure(request, Unauthorized(SIGN_IN))


def _path_of(url: str) -> str:
    """The path and query of an absolute URL on this host ("/" if there is none)."""
    scheme, _, rest = url.partition("://")
    _host, slash, path = rest.partition("/")
    return slash + path if scheme and slash else "/"


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    return failure(request, exc.error, heading="Not available")


def install(app: FastAPI, context: ServerContext) -> None:
    """The dashboard's routes, its static files and how its failures are answered."""
    app.state.dashboard_csrf = CsrfTokens(context)
    app.state.progress_streams = stream.StreamSlots()
    app.add_exception_handler(SignInRequired, _sign_in)
    app.add_exception_handler(PageError, _page_error)
    app.include_router(static_router)
    app.include_router(workspaces.router)
    app.include_router(account.router)
    app.include_router(admin.router)
    app.include_router(detail.router)
    app.include_router(backups.router)
