"""Subdomain mode: every request whose Host is an app host (``NAME--OWNER[--PORT].APPS_DOMAIN``)
goes to the app-host application, which lets it in by the ``dev8_app`` cookie (or a public
port's sharing) and relays it; everything else goes to the main application.

A browser without the cookie is sent to the main host's ``/api/v1/apps/ticket``, which (with
its session cookie) gives a one-time ticket for that host and sends it back to
``/__dev8/auth`` on the app host, which sets the cookie. No cookie is ever set for a parent
domain.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from starlette.requests import HTTPConnection

from dev8.core.addresses import AppTarget, parse_app_host
from dev8.core.clock import utcnow
from dev8.core.errors import Dev8Error, InvalidInput, NotFound, Unauthorized
from dev8.core.users import User
from dev8.server import errors, relay
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.web.ide import IDE_PORT, METHODS
from dev8.server.web.sessions import (
    APP_COOKIE,
    browser_session,
    cookie_values,
    login_redirect,
    refuse_cross_origin,
    requested_path,
    safe_next,
    set_cookie,
)
from dev8.server.web.state import WebState, web_state
from dev8.server.web.tickets import AppClaim
from dev8.store.ports import Sharing

AUTH_PATH = "/__dev8/auth"
TARGET = "dev8.app_target"  # where the dispatcher leaves the parsed host in the scope
SIGN_IN = "sign in first: open this address in the browser"
# A Host as a redirect may name it: a DNS name and an optional port, nothing else (no
# user info, which would send the browser, and its ticket, elsewhere).
_HOST = re.compile(r"[a-z0-9.-]{1,253}(?::[0-9]{1,5})?")
Scope = dict[str, Any]

# The main host ------------------------------------------------------------------------
ticket_router = APIRouter(include_in_schema=False)


@ticket_router.get("/api/v1/apps/ticket")
async def ticket(
    request: Request,
    context: Context,
    host: Annotated[str, Query(max_length=300)],
    next: Annotated[str, Query(max_length=4096)] = "/",
) -> Response:
    """Sends a signed-in browser to ``host`` with a one-time ticket for it."""
    domain = context.settings.apps_domain
    if not domain:
        raise NotFound("subdomain mode is off: the server has no DEV8_APPS_DOMAIN")
    name = hostname(host)
    if name is None or parse_app_host(host, domain) is None:
        raise InvalidInput(f"{host[:80]!r} is not an app host of {domain}")
    found = await browser_session(request, context)
    if found is None:
        return login_redirect(requested_path(request))
    issued = web_state(request).tickets.issue(name, found[1].id)
    scheme = urlsplit(context.settings.public_url or "").scheme or request.url.scheme
    query = urlencode({"ticket": issued, "next": safe_next(next)})
    return RedirectResponse(f"{scheme}://{host.strip().lower()}{AUTH_PATH}?{query}", 303)


# The app hosts ------------------------------------------------------------------------
app_router = APIRouter()


@app_router.get(AUTH_PATH)
async def redeem(
    request: Request,
    context: Context,
    ticket: Annotated[str, Query(max_length=128)],
    next: Annotated[str, Query(max_length=4096)] = "/",
) -> Response:
    """Trades a one-time ticket for this host's cookie, then goes on to ``next``."""
    state, host = web_state(request), _hostname(request)
    token_id = state.tickets.redeem(ticket, host)
    token = await run_in_threadpool(context.store.users.token, token_id) if token_id else None
    if token is None or token.revoked_at is not None or token.expires_at <= utcnow():
        raise Unauthorized("this sign-in link was used already or has expired; open the page again")
    hours = context.settings.session_hours
    expires = int(min(token.expires_at.timestamp(), time.time() + hours * 3600))
    value = state.app_cookies.sign(AppClaim(token.id, host, expires))
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(
        response, APP_COOKIE, value, max(expires - int(time.time()), 1), context.settings.dev
    )
    return response


@app_router.api_route("/{path:path}", methods=METHODS)
async def app_http(request: Request, context: Context) -> Response:
    target: AppTarget = request.scope[TARGET]
    try:
        await admit(request, context, target)
    except Unauthorized:
        if request.method not in ("GET", "HEAD"):
            raise
        return _ticket_redirect(request, context)
    upstream = await relay.live_upstream(request, target.owner, target.name, _port(target))
    return await relay.proxy_http(request, upstream, requested_path_raw(request))


@app_router.websocket("/{path:path}")
async def app_websocket(websocket: WebSocket, context: Context) -> None:
    target: AppTarget = websocket.scope[TARGET]
    try:
        await admit(websocket, context, target)
        upstream = await relay.live_upstream(websocket, target.owner, target.name, _port(target))
    except Dev8Error as error:
        await relay.deny(websocket, error)
        return
    await relay.proxy_websocket(websocket, upstream, requested_path_raw(websocket))


def _port(target: AppTarget) -> int:
    return target.port or IDE_PORT


async def admit(connection: HTTPConnection, context: ServerContext, target: AppTarget) -> None:
    """Lets the request in, or raises: ``Unauthorized`` (no valid cookie), ``NotFound``
    (not this user's, or no such workspace: the same answer), ``Forbidden`` (a change or
    WebSocket asked for by another host's page)."""
    sharing = Sharing.PRIVATE
    if target.port is not None:
        sharing = await run_in_threadpool(port_sharing, context, target)
        if sharing is Sharing.PUBLIC:
            return
    user = await app_user(connection, web_state(connection))
    if user is None:
        raise Unauthorized(SIGN_IN)
    if sharing is Sharing.PRIVATE and user.name != target.owner:
        raise NotFound(f"no workspace named {target.name!r}")
    refuse_cross_origin(connection)


def port_sharing(context: ServerContext, target: AppTarget) -> Sharing:
    """A port's sharing level, no wider than the server allows now; private when there is
    no such workspace."""
    try:
        workspace = context.service(target.owner).find(target.name)
    except NotFound:
        return Sharing.PRIVATE
    level = context.store.ports.sharing(workspace.id, target.port or 0)
    cap = Sharing(context.settings.max_port_sharing)
    return level if level.rank <= cap.rank else cap


async def app_user(connection: HTTPConnection, state: WebState) -> User | None:
    """The user of a valid ``dev8_app`` cookie for this host whose session is still valid."""
    host = _hostname(connection)
    for value in cookie_values(connection, APP_COOKIE):
        claim = state.app_cookies.verify(value, host)
        if claim is None:
            continue
        known, user = state.sessions.cached(claim.token_id)
        if not known:
            user = await run_in_threadpool(state.sessions.check, claim.token_id)
        if user is not None:
            connection.state.user = user
            return user
    return None


def _ticket_redirect(request: Request, context: ServerContext) -> Response:
    main = (context.settings.public_url or "").rstrip("/")
    query = urlencode({"host": request.headers.get("host", ""), "next": requested_path(request)})
    return RedirectResponse(f"{main}/api/v1/apps/ticket?{query}", status_code=303)


def requested_path_raw(connection: HTTPConnection) -> str:
    """The path as the browser sent it (still percent-encoded)."""
    raw = connection.scope.get("raw_path") or connection.scope["path"].encode()
    return raw.decode("latin-1")


def hostname(host: str) -> str | None:
    """A Host's name, lowercased, without its port or a trailing dot; None unless it is a
    plain DNS name with an optional port."""
    host = host.strip().lower()
    if not _HOST.fullmatch(host):
        return None
    return host.partition(":")[0].rstrip(".") or None


def _hostname(connection: HTTPConnection) -> str:
    return hostname(connection.headers.get("host", "")) or ""


# Dispatching by host ------------------------------------------------------------------
def app_host_application(context: ServerContext, state: WebState) -> FastAPI:
    """The application that serves the app hosts: nothing but the relay and its sign-in."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.context, app.state.web = context, state
    # As the main application's (``relay.upstream_for`` read now: tests put a stand-in there).
    app.state.upstreams = relay.UpstreamCache(context, relay.upstream_for)
    errors.install(app)
    app.include_router(app_router)
    return app


class AppHostDispatcher:
    """Plain ASGI, placed first: requests and WebSockets for an app host go to ``apps``,
    everything else (lifespan included) to the main application."""

    def __init__(self, app: Any, apps: Any, apps_domain: str) -> None:
        self.app, self.apps, self.apps_domain = app, apps, apps_domain

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            target = parse_app_host(_host_header(scope), self.apps_domain)
            if target is not None:
                await self.apps({**scope, TARGET: target}, receive, send)
                return
        await self.app(scope, receive, send)


def _host_header(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            return value.decode("latin-1")
    return ""
