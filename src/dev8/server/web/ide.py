"""The IDE in path mode, ``/@OWNER/NAME/...``: the owner's own (anyone else, admins
included, is told there is no such workspace), relayed to code-server at "/" with the prefix
stripped. HTTP and WebSocket upgrades are let in by the same function."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, WebSocket
from fastapi.responses import RedirectResponse, Response
from starlette.requests import HTTPConnection

from dev8.core.errors import Dev8Error, NotFound, Unauthorized
from dev8.core.users import User
from dev8.server import relay
from dev8.server.deps import Context
from dev8.server.web.sessions import (
    browser_session,
    login_redirect,
    refuse_cross_origin,
    requested_path,
)

router = APIRouter(include_in_schema=False)
IDE_PORT = 8080
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
Owner = Annotated[str, Path(max_length=255)]
Name = Annotated[str, Path(max_length=255)]
SIGN_IN = "sign in first: open /login in the browser"


def ide_prefix(owner: str, name: str) -> str:
    return f"/@{owner}/{name}"


def upstream_path(connection: HTTPConnection) -> str:
    """The path after ``/@OWNER/NAME``, as the browser sent it (still percent-encoded)."""
    raw = (connection.scope.get("raw_path") or connection.scope["path"].encode()).decode("latin-1")
    return "/" + "/".join(raw.split("/")[3:])


def owner_only(connection: HTTPConnection, user: User | None, owner: str, name: str) -> None:
    """``Unauthorized`` without a session; ``NotFound`` for anyone but the owner, whether
    the workspace exists or not; ``Forbidden`` for a change or WebSocket another host's
    page asked for."""
    if user is None:
        raise Unauthorized(SIGN_IN)
    if user.name != owner:
        raise NotFound(f"no workspace named {name!r}")
    refuse_cross_origin(connection)


@router.api_route("/@{owner}/{name}", methods=["GET", "HEAD"])
async def ide_root(request: Request, owner: Owner, name: Name) -> Response:
    query = request.url.query
    return RedirectResponse(ide_prefix(owner, name) + "/" + (f"?{query}" if query else ""), 307)


@router.api_route("/@{owner}/{name}/{path:path}", methods=METHODS)
async def ide_http(request: Request, context: Context, owner: Owner, name: Name) -> Response:
    found = await browser_session(request, context)
    if found is None:
        return login_redirect(requested_path(request))
    owner_only(request, found[0], owner, name)
    upstream = await relay.live_upstream(request, owner, name, IDE_PORT)
    return await relay.proxy_http(
        request, upstream, upstream_path(request), forwarded_prefix=ide_prefix(owner, name)
    )


@router.websocket("/@{owner}/{name}/{path:path}")
async def ide_websocket(websocket: WebSocket, context: Context, owner: Owner, name: Name) -> None:
    try:
        found = await browser_session(websocket, context)
        owner_only(websocket, found[0] if found else None, owner, name)
        upstream = await relay.live_upstream(websocket, owner, name, IDE_PORT)
    except Dev8Error as error:
        await relay.deny(websocket, error)
        return
    await relay.proxy_websocket(websocket, upstream, upstream_path(websocket))
