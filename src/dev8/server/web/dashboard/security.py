"""What keeps the dashboard's pages safe in a browser: who is signed in (the ``dev8_session``
cookie) and the CSRF token every cookie-authenticated change must carry. Their headers (the
Content-Security-Policy: no inline script, no framing) are every page's,
``dev8.server.web.pages.PAGE_HEADERS``.

The CSRF token is an HMAC of the session's API token id with a key derived from the server's
secret key: it needs no storage, differs per session, and ends with the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request

from dev8.core.errors import Forbidden
from dev8.core.users import ApiToken, User
from dev8.server.context import ServerContext
from dev8.server.web.sessions import SAFE_METHODS, browser_session, refuse_cross_origin
from dev8.server.web.state import signing_secret
from dev8.server.web.tickets import derive_key

CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_CSRF_PURPOSE = b"dev8 dashboard csrf v1"
BAD_CSRF = "this form has expired or did not come from this site; reload the page and try again"


class SignInRequired(Exception):
    """No valid session: a page is sent to the sign-in page, anything else is refused."""


class CsrfTokens:
    """Per-session CSRF tokens (a key of their own, derived from the app-cookie key)."""

    def __init__(self, context: ServerContext) -> None:
        app_key = derive_key(signing_secret(context.settings))
        self._key = hmac.new(app_key, _CSRF_PURPOSE, hashlib.sha256).digest()

    def token(self, token_id: str) -> str:
        mac = hmac.new(self._key, token_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    def valid(self, token_id: str, given: str) -> bool:
        return hmac.compare_digest(self.token(token_id), given)


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a page, their session and its CSRF token."""

    user: User
    session: ApiToken
    csrf: str


async def viewer(request: Request, context: ServerContext, csrf: CsrfTokens) -> Viewer:
    """The request's signed-in user; a change must also come from this host with the
    session's CSRF token (header or form field), else ``Forbidden``."""
    found = await browser_session(request, context)
    if found is None:
        raise SignInRequired()
    user, session = found
    if request.method not in SAFE_METHODS:
        refuse_cross_origin(request)
        given = request.headers.get(CSRF_HEADER) or await _form_token(request)
        if not csrf.valid(session.id, given):
            raise Forbidden(BAD_CSRF)
    return Viewer(user, session, csrf.token(session.id))


async def _form_token(request: Request) -> str:
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return ""
    form = await request.form(max_fields=200)  # kept by Starlette for the route
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""
