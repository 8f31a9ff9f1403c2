"""Templates and static assets of the dashboard: one Jinja2 environment (autoescaped), the
files the pages load (versioned, cached for a year), and how a failure is answered: a page
for a browser, a fragment for htmx, the API's JSON for anything else."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse, Response
from starlette.requests import Request

from dev8.core.errors import Dev8Error
from dev8.server.errors import error_response
from dev8.server.web.pages import PAGE_HEADERS

HTMX = "htmx-2.0.11.min.js"
STYLESHEET = "dashboard.css"
ICON = "favicon.svg"
YEAR = 365 * 24 * 3600
_PACKAGE = resources.files("dev8.server.web.dashboard")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    media_type: str
    version: str  # of its content: a changed file is a new address, so caching forever is safe

    @property
    def url(self) -> str:
        return f"/static/{self.name}?v={self.version}"


def load_asset(name: str) -> Asset:
    body = (_PACKAGE / "static" / name).read_bytes()
    media_type = _TYPES["." + name.rsplit(".", 1)[-1]]
    return Asset(name, body, media_type, hashlib.sha256(body).hexdigest()[:12])


ASSETS = {name: load_asset(name) for name in (HTMX, STYLESHEET, ICON, "progress-stream.js")}


def asset_response(asset: Asset) -> Response:
    headers = {
        "Cache-Control": f"public, max-age={YEAR}, immutable",
        "X-Content-Type-Options": "nosniff",
    }
    return Response(asset.body, media_type=asset.media_type, headers=headers)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(_PACKAGE / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    # Templates are package data and change only with the package; checking their files at
    # every render and include (a stat each) was half of the workspaces page's time.
    auto_reload=False,
)
_environment.globals["assets"] = {name: asset.url for name, asset in ASSETS.items()}


def html(template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` rendered with ``values``, with the pages' security headers."""
    body = _environment.get_template(template).render(**values)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def failure(request: Request, error: Dev8Error, **page: Any) -> Response:
    """``error``'s one line with its status: a notice for htmx to swap in, a page for a
    browser (``page`` holds what its layout shows), else the API's ``{"error", "message"}``."""
    if is_htmx(request):
        request.state.error = error
        return html("_notice.html", error.http_status, error=error.message, message="")
    if wants_html(request):
        request.state.error = error
        shown = {"viewer": None, "title": "Error", "heading": "Not done", "current": "", **page}
        return html("error.html", error.http_status, error=error.message, **shown)
    return error_response(request, error)
