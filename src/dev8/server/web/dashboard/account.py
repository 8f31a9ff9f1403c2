"""The account page: the signed-in user's SSH keys, dotfiles repository, password and API
tokens. Every change goes through ``Accounts`` under the API's rules: a member gives their
current password to set a new one, a token is shown once (on the page that created it) and
a user revokes only their own tokens (an admin anyone's, as the API lets them).

Each change answers with the page again, its outcome in one line at the top: a created
token can only be shown by the answer to the request that made it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from dev8.core.errors import Dev8Error, Forbidden, InvalidInput, Unauthorized
from dev8.server.context import ServerContext
from dev8.server.deps import Context
from dev8.server.ratelimit import checked_password
from dev8.server.routes.accounts import follow_account_change
from dev8.server.web.dashboard.render import failure, html, is_htmx, wants_html
from dev8.server.web.dashboard.scope import SignedIn
from dev8.server.web.dashboard.security import Viewer

router = APIRouter(include_in_schema=False)
MAX_FORM_FIELDS = 20
WRONG_PASSWORD = "the current password is wrong or missing"


def page_values(context: ServerContext, signed_in: Viewer) -> dict[str, Any]:
    user = context.accounts.users.get(signed_in.user.id)
    tokens = [
        token
        for token in context.store.users.tokens(user.id)
        if token.id != signed_in.session.id  # this browser's session: "Sign out" ends it
    ]
    return {"viewer": signed_in, "user": user, "tokens": tokens}


def _page(
    context: ServerContext,
    signed_in: Viewer,
    *,
    message: str = "",
    error: str = "",
    status: int = 200,
    created: str = "",
) -> Response:
    return html(
        "account.html",
        status,
        title="Account",
        current="account",
        message=message,
        error=error,
        created=created,
        **page_values(context, signed_in),
    )


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    return {key: value for key, value in form.items() if isinstance(value, str)}


def refused(
    request: Request, context: ServerContext, signed_in: Viewer, error: Dev8Error
) -> Response:
    """A page (a browser, or htmx which swaps its main part in) with the error's one line;
    anything else gets the API's JSON."""
    if is_htmx(request) or wants_html(request):
        request.state.error = error
        return _page(context, signed_in, error=error.message, status=error.http_status)
    return failure(request, error)


@router.get("/account")
def account_page(context: Context, signed_in: SignedIn) -> Response:
    return _page(context, signed_in)


@router.post("/account/ssh-keys")
async def save_ssh_keys(request: Request, context: Context, signed_in: SignedIn) -> Response:
    form = await _form(request)
    try:
        changed = await run_in_threadpool(
            context.accounts.change, signed_in.user, ssh_keys=form.get("ssh_keys", "")
        )
        await run_in_threadpool(
            follow_account_change, context, signed_in.user, changed, signed_in.user.name
        )
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    return _page(
        context, signed_in, message="SSH keys saved; your running workspaces have them now."
    )


@router.post("/account/dotfiles")
async def save_dotfiles(request: Request, context: Context, signed_in: SignedIn) -> Response:
    form = await _form(request)
    try:
        await run_in_threadpool(
            context.accounts.change,
            signed_in.user,
            dotfiles_repo=form.get("dotfiles_repo", "").strip(),
        )
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    return _page(context, signed_in, message="Dotfiles repository saved.")


def change_password(
    request: Request, context: ServerContext, signed_in: Viewer, form: dict[str, str]
) -> None:
    """The API's rule: a member proves who they are with the current password (behind the
    sign-in backoff); an admin, who may reset anyone's, need not."""
    user = signed_in.user
    new = form.get("password", "")
    if new != form.get("password_again", ""):
        raise InvalidInput("the two new passwords differ; type the same one twice")
    if not user.is_admin:
        current = form.get("current_password", "")
        try:
            checked_password(request, context.accounts, user.name, current)
        except Unauthorized:
            raise Forbidden(WRONG_PASSWORD) from None
    context.accounts.change(user, password=new, keep=signed_in.session)


@router.post("/account/password")
async def save_password(request: Request, context: Context, signed_in: SignedIn) -> Response:
    form = await _form(request)
    try:
        await run_in_threadpool(change_password, request, context, signed_in, form)
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    message = "Password changed. Your other sessions and API tokens are revoked."
    return _page(context, signed_in, message=message)


def token_days(text: str, default: int) -> int:
    if not text.strip():
        return default
    if not text.strip().isdigit():
        raise InvalidInput(f"expires in {text[:20]!r} days is not a whole number of days")
    return int(text)


@router.post("/account/tokens")
async def create_token(request: Request, context: Context, signed_in: SignedIn) -> Response:
    form = await _form(request)
    name = form.get("name", "").strip()[:100] or "dashboard"
    try:
        days = token_days(form.get("expires_in_days", ""), context.settings.token_days)
        token, secret = await run_in_threadpool(
            context.accounts.issue_token, signed_in.user, name, days
        )
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    message = f"Token {token.name} created. Copy it now: it is not shown again."
    return _page(context, signed_in, message=message, created=secret)


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, context: Context, signed_in: SignedIn, token_id: str
) -> Response:
    try:
        token = await run_in_threadpool(context.accounts.token_of, signed_in.user, token_id[:64])
        await run_in_threadpool(context.accounts.revoke, token)
    except Dev8Error as error:
        return refused(request, context, signed_in, error)
    return _page(context, signed_in, message=f"Token {token.name} revoked.")
