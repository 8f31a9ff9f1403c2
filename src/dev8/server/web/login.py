"""``GET /login``, ``POST /login`` and ``POST /logout``: the browser's sign-in, which gives
the ``dev8_session`` cookie (a new API token that lives ``session_hours``)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dev8.core.errors import Unauthorized
from dev8.server.deps import Context
from dev8.server.web.pages import login_page
from dev8.server.web.sessions import (
    SESSION_COOKIE,
    SESSION_TOKEN_NAME,
    browser_session,
    clear_cookie,
    safe_next,
    same_origin,
    set_cookie,
)
from dev8.server.web.state import web_state
from dev8.service.accounts import BAD_LOGIN

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 16 * 1024
TOO_MANY = "too many failed sign-ins; wait a few minutes and try again"


@router.get("/login")
async def login_form(context: Context, next: str | None = Query(None, max_length=4096)) -> Response:
    return login_page(safe_next(next), apps_domain=context.settings.apps_domain)


@router.post("/login")
async def login(request: Request, context: Context) -> Response:
    form = await _form(request)
    name, password = form.get("username", "")[:255], form.get("password", "")
    next_path = safe_next(form.get("next"))
    apps = context.settings.apps_domain
    if not same_origin(request):
        return login_page(
            next_path, "this sign-in did not come from this site's form", name, 403, apps
        )
    address = request.client.host if request.client else "unknown"
    limiter = web_state(request).limiter
    if limiter.blocked(address, name):
        return login_page(next_path, TOO_MANY, name, 429, apps)
    request.state.claimed_user = name
    try:
        user = await run_in_threadpool(context.accounts.authenticate, name, password)
    except Unauthorized:
        limiter.failed(address, name)
        return login_page(next_path, BAD_LOGIN, name, 401, apps)
    request.state.user = user
    hours = context.settings.session_hours
    _token, secret = await run_in_threadpool(
        context.accounts.issue_token, user, SESSION_TOKEN_NAME, hours=hours
    )
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, SESSION_COOKIE, secret, hours * 3600, context.settings.dev)
    return response


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    """Ends the browser session: its token is revoked, its cookie cleared."""
    found = await browser_session(request, context)
    if found is not None:
        await run_in_threadpool(context.accounts.revoke, found[1])
        web_state(request).sessions.forget(found[1].id)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, SESSION_COOKIE, context.settings.dev)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form of at most ``MAX_FORM_BYTES``; the first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    except ValueError:  # more fields than a sign-in has
        return {}
    return {key: values[0] for key, values in fields.items()}
