"""Browser sessions: the ``dev8_session`` cookie (an API token named "browser session"),
where a sign-in may lead, and the bound on failed sign-ins.

The JSON API never reads these cookies (Bearer only), so no page of another site can make a
browser act on the API.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi.responses import RedirectResponse, Response
from starlette.requests import HTTPConnection

from dev8.core.errors import Forbidden, Unauthorized
from dev8.core.users import ApiToken, User
from dev8.server.context import ServerContext
from dev8.server.deps import token_user

SESSION_COOKIE = "dev8_session"
APP_COOKIE = "dev8_app"
SESSION_TOKEN_NAME = "browser session"
MAX_NEXT = 2048
# A cookie may come more than once (a page of an app host can set one for a parent domain);
# each value is tried, a few at most.
MAX_COOKIE_VALUES = 4


def safe_next(value: str | None) -> str:
    """``value`` if it is a path on this host (not ``//host`` nor ``/\\host``, which browsers
    read as another host), else "/"."""
    if (
        not value
        or len(value) > MAX_NEXT
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(ord(char) < 0x20 or char == "\x7f" for char in value)
    ):
        return "/"
    return value


def requested_path(connection: HTTPConnection) -> str:
    """The path and query the browser asked for, as it sent them."""
    raw = connection.scope.get("raw_path") or connection.scope["path"].encode()
    query = connection.scope.get("query_string", b"")
    path = raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    return safe_next(path)


def same_origin(connection: HTTPConnection) -> bool:
    """Whether the request came from a page of this very host, or says nothing of its
    origin (as non-browser clients do). Checked where a cookie authenticates something that
    changes state or opens a WebSocket: a page of another host of the same site (a shared
    port, say) would send the cookie along, SameSite=Lax notwithstanding."""
    origin = connection.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_ORIGIN = "a page of another site may not do this; open the address itself"


def refuse_cross_origin(connection: HTTPConnection) -> None:
    """``Forbidden`` for a change (or a WebSocket) that a page of another host asked for."""
    scope = connection.scope
    changes = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
    if changes and not same_origin(connection):
        raise Forbidden(CROSS_ORIGIN)


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(next_path, safe='')}", status_code=303)


def cookie_values(connection: HTTPConnection, name: str) -> list[str]:
    """Every value of cookie ``name`` the request carries (Starlette keeps only one)."""
    values = []
    for header in connection.headers.getlist("cookie"):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                values.append(value.strip('"'))
    return values[:MAX_COOKIE_VALUES]


async def browser_session(
    connection: HTTPConnection, context: ServerContext
) -> tuple[User, ApiToken] | None:
    """The user and token of the request's valid session cookie, if any (a disabled
    user's session is not valid: ``token_user`` refuses it)."""
    for secret in cookie_values(connection, SESSION_COOKIE):
        try:
            found = await token_user(context, secret)
        except Unauthorized:
            continue
        connection.state.user, connection.state.token = found
        return found
    return None


def set_cookie(response: Response, name: str, value: str, seconds: int, dev: bool) -> None:
    """A host-only (no Domain), HttpOnly, SameSite=Lax cookie for the whole host; Secure
    outside development mode."""
    response.set_cookie(
        name, value, max_age=seconds, path="/", secure=not dev, httponly=True, samesite="lax"
    )


def clear_cookie(response: Response, name: str, dev: bool) -> None:
    response.delete_cookie(name, path="/", secure=not dev, httponly=True, samesite="lax")
