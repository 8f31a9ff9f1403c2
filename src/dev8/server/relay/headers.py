"""Header hygiene for requests relayed into a workspace, the same for HTTP and WebSockets:
the proxy's own credentials (``Authorization``, dev8's cookies) never reach the workspace,
hop-by-hop headers stay on their hop, and the ``X-Forwarded-*`` headers are the server's
own (a client's are dropped: they could claim any address)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.requests import HTTPConnection

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers dev8 sets itself, that belong to this hop only, or that frame the body
# (the caller's to set: HTTP passes the length on, a WebSocket has no body).
_REPLACED = frozenset({"host", "authorization", "forwarded", "expect", "content-length"})
DEV8_COOKIE_PREFIX = "dev8_"

Headers = list[tuple[str, str]]


def connection_tokens(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Header names a ``Connection`` header declares hop-by-hop."""
    return frozenset(
        token.strip().lower()
        for name, value in headers
        if name.lower() == "connection"
        for token in value.split(",")
    )


def without_dev8_cookies(cookie_header: str) -> str:
    """A ``Cookie`` header without dev8's own cookies (any name starting with ``dev8_``)."""
    kept = [
        part.strip()
        for part in cookie_header.split(";")
        if part.strip() and not part.strip().startswith(DEV8_COOKIE_PREFIX)
    ]
    return "; ".join(kept)


def upstream_headers(connection: HTTPConnection, forwarded_prefix: str = "") -> Headers:
    """The headers a relayed request carries: the client's, cleaned, then ``Host`` (the
    public host the client used, so that the app's origin checks pass) and the forwarded
    ones. Framing (``Content-Length``, chunking) is the caller's."""
    received = [(name.lower(), value) for name, value in connection.headers.items()]
    dropped = HOP_BY_HOP | _REPLACED | connection_tokens(received)
    headers: Headers = []
    for name, value in received:
        if name in dropped or name.startswith("x-forwarded-"):
            continue
        if name == "cookie":
            value = without_dev8_cookies(value)
            if not value:
                continue
        headers.append((name, value))
    host = connection.headers.get("host") or connection.url.netloc
    headers.append(("host", host))
    headers.append(("x-forwarded-host", host))
    headers.append(("x-forwarded-proto", _http_scheme(connection.url.scheme)))
    if connection.client is not None:
        headers.append(("x-forwarded-for", connection.client.host))
    if forwarded_prefix:
        headers.append(("x-forwarded-prefix", forwarded_prefix))
    return headers


def downstream_headers(received: Iterable[tuple[str, str]]) -> Headers:
    """An upstream answer's headers as passed back: all but hop-by-hop ones (``Set-Cookie``
    passes: it is the app's cookie on its own origin)."""
    received = [(name.lower(), value) for name, value in received]
    dropped = HOP_BY_HOP | connection_tokens(received)
    return [(name, value) for name, value in received if name not in dropped]


def _http_scheme(scheme: str) -> str:
    return {"ws": "http", "wss": "https"}.get(scheme, scheme)
