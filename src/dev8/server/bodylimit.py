"""Request bodies bounded before anything reads them (``DEV8_MAX_BODY_BYTES``).

A body whose ``Content-Length`` is over the limit is answered 413 before the application
sees the request: no route runs, no token is checked, nothing is read. A body sent without a
length (chunked) is counted as the application reads it; the chunk that goes over the limit
is answered 413 instead, and the application's read fails (it is never handed a truncated
body it might act on); whatever it answers then is dropped.

The IDE in path mode (``/@OWNER/NAME/...``) is the one exception: code-server takes uploads
of any size, and its route checks the session before it reads anything, then relays the body
as it streams (nothing buffered). Everything else the server takes is a small JSON document
or form; the app hosts of a shared port are dispatched before this middleware.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dev8.core.errors import PayloadTooLarge

IDE_PREFIX = "/@"


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is over the server's limit of {limit} bytes (DEV8_MAX_BODY_BYTES)"
    )


def declared_length(headers: Headers) -> int | None:
    """The ``Content-Length`` of the request, if it has a valid one."""
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(IDE_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = declared_length(headers)
        if length is not None and length > self.limit:
            await refuse(scope, send, self.limit)
            return
        if "transfer-encoding" not in headers:
            # No body, or one of the declared length, which the HTTP server never reads
            # past: nothing to count.
            await self.app(scope, receive, send)
            return
        bounded = _Bounded(self.limit, scope, receive, send)
        with suppress(_CutOff):  # answered 413 already (or cut short if the answer had begun)
            await self.app(scope, bounded.receive, bounded.send)


async def refuse(scope: Scope, send: Send, limit: int) -> None:
    """The 413 answer, in the API's shape."""
    error = too_large(limit)
    scope.setdefault("state", {})["error"] = error  # the audit log's code and message
    response = JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.http_status,
        headers={"Connection": "close"},  # the rest of the body is never read
    )
    await response(scope, _nothing_to_receive, send)


class _CutOff(Exception):
    """Raised to the application in place of the chunk that goes over the limit, so that it
    stops reading (it is never handed a truncated body) and this middleware ends the
    request quietly: no 500, no traceback in the log."""


class _Bounded:
    """One request whose body is counted as the application reads it."""

    def __init__(self, limit: int, scope: Scope, receive: Receive, send: Send) -> None:
        self.limit, self.scope, self._receive, self._send = limit, scope, receive, send
        self.received = 0
        self.started = self.refused = False

    async def receive(self) -> Message:
        if self.refused:
            raise _CutOff
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self.received += len(message.get("body", b""))
        if self.received <= self.limit:
            return message
        self.refused = True
        if not self.started:
            await refuse(self.scope, self._send, self.limit)
        raise _CutOff

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 went out instead
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


async def _nothing_to_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}
