"""The FastAPI application: one factory, used by `dev8 server` and by the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dev8 import __version__
from dev8.providers.base import Provider
from dev8.server import errors, relay
from dev8.server.bodylimit import BodyLimit
from dev8.server.context import ServerContext
from dev8.server.proxies import trusted_proxies
from dev8.server.ratelimit import Limits, SignInThrottle
from dev8.server.reconciler import Reconciler
from dev8.server.recorder import RequestRecorder
from dev8.server.routes import accounts, backups, operations, ports, system, tunnel, workspaces
from dev8.server.settings import Settings
from dev8.server.web import dashboard, door, ide
from dev8.server.web.sso.routes import router as sso_router
from dev8.service.agent_client import AgentClient

DESCRIPTION = """Persistent cloud development workspaces.

Authenticate with `Authorization: Bearer <token>`; `POST /api/v1/auth/login` gives a token.
Changes to a workspace are recorded and answered with 202 and the operations that carry them
out; follow one with `GET /api/v1/operations/{id}` and its `/events`. Errors are
`{"error": code, "message": one line}`.
"""


@cache
def _routes() -> tuple[BaseRoute, ...]:
    """The IDE's, the API's and single sign-on's routes, built once per process. FastAPI
    builds an included router's routes (dependencies, validators) at the first request that
    reaches them, once per app that includes it: 0.15 s of CPU, and the tests make hundreds
    of apps. These routers keep nothing of an app (a route reads its app's state from the
    request), so the apps of a process share one build. (Shared, they would not see an
    app's ``dependency_overrides``; dev8 sets none.)"""
    table = APIRouter()
    # First: the IDE's requests come by the dozen, and a router scans its routes in the order
    # they were included (nothing else is under /@).
    table.include_router(ide.router)
    for module in (system, accounts, workspaces, ports, backups, operations, tunnel):
        table.include_router(module.router)
    table.include_router(sso_router)  # single sign-on: /login/{provider} and its callback
    return tuple(table.routes)


def create_app(
    settings: Settings | None = None,
    provider: Provider | None = None,
    background: bool = True,
    agent: AgentClient | None = None,
) -> FastAPI:
    """The application over a freshly opened (and migrated) database. ``background=False``
    leaves the reconciler off (tests drive it themselves); ``provider`` and ``agent`` are
    for tests that inject faults."""
    context = ServerContext.open(settings or Settings(), provider, agent)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.bootstrap()
        reconciler = Reconciler(context)
        app.state.reconciler = reconciler
        if background:
            reconciler.start()
        try:
            yield
        finally:
            if background:
                reconciler.stop()

    app = FastAPI(
        title="dev8",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        swagger_ui_oauth2_redirect_url="/api/v1/docs/oauth2-redirect",
        redoc_url=None,
    )
    app.state.context = context
    errors.install(app)
    app.router.routes.extend(_routes())
    app.state.sign_ins = SignInThrottle(Limits.of(context.settings))  # password backoff
    # Where relayed requests go (``relay.upstream_for`` read now: tests put a stand-in there).
    app.state.upstreams = relay.UpstreamCache(context, relay.upstream_for)
    app.add_middleware(BodyLimit, limit=context.settings.max_body_bytes)  # in the recorder
    app.add_middleware(RequestRecorder, context=lambda: context)
    dashboard.install(app, context)  # the pages, their static files and errors
    door.install(app, context)  # last: app hosts are dispatched before anything else
    if proxies := trusted_proxies(context.settings.trusted_proxies):  # around all of it
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    return app
