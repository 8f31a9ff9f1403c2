"""``GET /login``, ``POST /login`` and ``POST /logout``: the browser's sign-in, which gives
the ``dev8_session`` cookie (a new API token that lives ``session_hours``)."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dev8.core.errors import PayloadTooLarge, TooManyRequests, Unauthorized
from dev8.core.users import User
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.ratelimit import checked_password
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
from dev8.server.web.sso.providers import provider_buttons
from dev8.server.web.state import web_state

router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 16 * 1024
NOT_OUR_FORM = "this sign-in did not come from this site's form"
PASSWORD_OFF = "signing in with a password is turned off here; use a button above"


@router.get("/login")
async def login_form(context: Context, next: str | None = Query(None, max_length=4096)) -> Response:
    return sign_in_page(context, safe_next(next))


def sign_in_page(
    context: ServerContext, next_path: str, error: str = "", name: str = "", status: int = 200
) -> Response:
    """The sign-in page: the password form (unless turned off) and a button per provider."""
    settings = context.settings
    return login_page(
        next_path,
        error,
        name,
        status,
        settings.apps_domain,
        providers=provider_buttons(settings),
        password=settings.password_login,
    )


@router.post("/login")
async def login(request: Request, context: Context) -> Response:
    form = await _form(request)
    name, password = form.get("username", "")[:255], form.get("password", "")
    next_path = safe_next(form.get("next"))
    if not context.settings.password_login:
        return sign_in_page(context, next_path, PASSWORD_OFF, status=403)
    if not same_origin(request):
        return sign_in_page(context, next_path, NOT_OUR_FORM, name, 403)
    request.state.claimed_user = name
    try:
        user = await run_in_threadpool(checked_password, request, context.accounts, name, password)
    except TooManyRequests as waiting:  # before any check (dev8.server.ratelimit)
        page = sign_in_page(context, next_path, waiting.message, name, 429)
        page.headers["Retry-After"] = str(waiting.retry_after)
        return page
    except Unauthorized as refused:  # a wrong password, or the right one of a disabled user
        return sign_in_page(context, next_path, refused.message, name, 401)
    request.state.user = user
    return await start_session(context, user, next_path)


async def start_session(context: ServerContext, user: User, next_path: str) -> Response:
    """Signs ``user`` in, whichever way they proved who they are: a new "browser session"
    token that lives ``session_hours``, in the ``dev8_session`` cookie; on to ``next_path``."""
    hours = context.settings.session_hours
    _token, secret = await run_in_threadpool(
        context.accounts.issue_token, user, SESSION_TOKEN_NAME, hours=hours
    )
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, SESSION_COOKIE, secret, hours * 3600, context.settings.dev)
    return response


@router.post("/logout")
async def logout(request: Request, context: Context) -> Response:
    """Ends the browser session: its token is revoked, its cookie cleared. Only from this
    site's own pages: an app host is the same site, so SameSite alone would let any shared
    port's page sign its visitors out."""
    if not same_origin(request):
        return login_page("/", "this sign-out did not come from this site", status=403)
    found = await browser_session(request, context)
    if found is not None:
        await run_in_threadpool(context.accounts.revoke, found[1])
        web_state(request).sessions.forget(found[1].id)
    response = RedirectResponse("/login", status_code=303)
    clear_cookie(response, SESSION_COOKIE, context.settings.dev)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A URL-encoded form of at most ``MAX_FORM_BYTES`` (beyond: 413, the rest unread, as
    for any body over the server's limit); the first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"a sign-in form is at most {MAX_FORM_BYTES // 1024} KiB")
    try:
        fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    except ValueError:  # more fields than a sign-in has
        return {}
    return {key: values[0] for key, values in fields.items()}
