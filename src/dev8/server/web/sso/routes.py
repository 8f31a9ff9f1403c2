"""``GET /login/{provider}`` sends the browser to the identity provider with a fresh state,
nonce and PKCE challenge (kept in the signed flow cookie); ``GET /login/{provider}/callback``
checks them, exchanges the code, admits the user and gives the same ``dev8_session`` as the
password form."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dev8.core.errors import Dev8Error, NotFound, Unauthorized
from dev8.server.deps import Context
from dev8.server.web.login import sign_in_page, start_session
from dev8.server.web.sessions import cookie_values, safe_next
from dev8.server.web.sso.admission import Policy, sign_in
from dev8.server.web.sso.flow import (
    FLOW_COOKIE,
    Flow,
    FlowCookies,
    clear_flow_cookie,
    flow_key,
    set_flow_cookie,
    states_match,
)
from dev8.server.web.sso.providers import (
    IdentityProvider,
    configured_providers,
)
from dev8.server.web.state import signing_secret
from dev8.server.web.tickets import derive_key

router = APIRouter(include_in_schema=False)
EXPIRED = "this sign-in was not started in this browser or took too long; sign in again"
USED = "this sign-in was finished already; sign in again"
MAX_USED_STATES = 10_000


@dataclass
class SsoState:
    """What single sign-on keeps in the server process: the providers (with their cached
    discovery documents and keys), the flow-cookie signer, and the states of finished
    sign-ins (a callback is taken once, even with its cookie replayed)."""

    providers: dict[str, IdentityProvider]
    cookies: FlowCookies
    policy: Policy
    used: OrderedDict[str, None] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def first_use(self, state: str) -> bool:
        with self.lock:
            if state in self.used:
                return False
            self.used[state] = None
            while len(self.used) > MAX_USED_STATES:
                self.used.popitem(last=False)
            return True


_create_lock = threading.Lock()


def sso_state(request: Request, context: Context) -> SsoState:
    with _create_lock:
        found = getattr(request.app.state, "sso", None)
        if found is None:
            settings = context.settings
            key = flow_key(derive_key(signing_secret(settings)))
            found = SsoState(configured_providers(settings), FlowCookies(key), Policy.of(settings))
            request.app.state.sso = found
        return found


def _provider(state: SsoState, slug: str) -> IdentityProvider:
    found = state.providers.get(slug)
    if found is None:
        raise NotFound(f"no identity provider {slug[:40]!r} is configured here")
    return found


def redirect_uri(request: Request, context: Context, slug: str) -> str:
    base = (context.settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/login/{slug}/callback"


def _refused(context: Context, error: Dev8Error, next_path: str = "/") -> Response:
    """The sign-in page with the one-line reason; the flow cookie is gone."""
    page = sign_in_page(context, next_path, str(error), status=error.http_status)
    clear_flow_cookie(page, context.settings.dev)
    return page


@router.get("/login/{provider}")
async def start(
    request: Request,
    context: Context,
    provider: str,
    next: str | None = Query(None, max_length=4096),
) -> Response:
    state = sso_state(request, context)
    try:
        chosen = _provider(state, provider)
        flow = Flow.new(chosen.slug, safe_next(next))
        url = await chosen.authorize_url(flow, redirect_uri(request, context, chosen.slug))
    except Dev8Error as exc:
        return _refused(context, exc, safe_next(next))
    response = RedirectResponse(url, status_code=303)
    set_flow_cookie(response, state.cookies.sign(flow), context.settings.dev)
    return response


@router.get("/login/{provider}/callback")
async def callback(
    request: Request,
    context: Context,
    provider: str,
    code: str | None = Query(None, max_length=4096),
    state: str | None = Query(None, max_length=512),
    error: str | None = Query(None, max_length=200),
) -> Response:
    sso = sso_state(request, context)
    try:
        chosen = _provider(sso, provider)
        flow = _flow(request, sso, chosen.slug, state)
        if error is not None or not code:
            raise Unauthorized(f"the identity provider refused the sign-in ({error or 'no code'})")
        found = await chosen.identify(code, flow, redirect_uri(request, context, chosen.slug))
        user = await run_in_threadpool(sign_in, context.accounts, sso.policy, found)
    except Dev8Error as exc:
        return _refused(context, exc)
    request.state.user = user
    response = await start_session(context, user, flow.next)
    clear_flow_cookie(response, context.settings.dev)
    return response


def _flow(request: Request, sso: SsoState, slug: str, state: str | None) -> Flow:
    """The flow this browser started, if ``state`` is its state and it was not finished."""
    for value in cookie_values(request, FLOW_COOKIE):
        flow = sso.cookies.verify(value, slug)
        if flow is not None and states_match(flow, state):
            if not sso.first_use(flow.state):
                raise Unauthorized(USED)
            return flow
    raise Unauthorized(EXPIRED)
