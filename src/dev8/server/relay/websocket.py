"""WebSockets to a port in a workspace: the browser's side is Starlette's ``WebSocket``,
the workspace's side the ``websockets`` client over a relayed socket.

Memory: a message is whole in memory on its way (Starlette hands over whole messages), so
the workspace's messages are capped at ``MAX_MESSAGE`` (code-server sends big ones: file
contents, extension host traffic) and at most ``MAX_QUEUE`` frames wait unread; a browser's
are capped by the server's ``ws_max_size`` (uvicorn's default: 16 MiB). One connection
holds at most about (``MAX_QUEUE`` + 1) x ``MAX_MESSAGE`` in the worst case, and only when
its own workspace sends that much faster than its browser takes it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from dev8.core.errors import Dev8Error, Unauthorized, WorkspaceUnreachable
from dev8.server.relay.agent import HANDSHAKE_TIMEOUT_S, Upstream, relay_socket
from dev8.server.relay.headers import upstream_headers

MAX_MESSAGE = 64 * 1024 * 1024
MAX_QUEUE = 4
REFUSAL_BODY_MAX = 64 * 1024
# Set by the websockets client itself, from its own arguments.
_CLIENT_SET = ("host", "origin", "user-agent", "content-length", "content-type")
# Close codes that only describe a closing and may not be sent in a close frame.
_UNSENDABLE = {1005: 1000, 1006: 1011, 1015: 1011, 1004: 1011}


async def proxy_websocket(websocket: WebSocket, upstream: Upstream, path: str) -> None:
    """Connect to ``path`` (with the request's query string) on ``upstream`` first, then
    accept the browser's WebSocket with the subprotocol the upstream chose and relay
    messages both ways until either side closes; each side is closed with the other's code.
    If the upstream cannot be reached, the browser gets the HTTP error instead (502 JSON),
    or the upstream's own refusal."""
    try:
        remote = await _connect(websocket, upstream, path)
    except InvalidStatus as refused:
        await websocket.send_denial_response(_refusal_response(refused))
        return
    except Dev8Error as error:
        await deny(websocket, error)
        return
    try:
        await websocket.accept(subprotocol=remote.subprotocol)
        await _relay(websocket, remote)
    finally:
        await remote.close()


async def deny(websocket: WebSocket, error: Dev8Error) -> None:
    """Refuse a WebSocket before accepting it, with the one-line JSON error as the HTTP
    answer (a server without the denial extension gets a policy-violation close)."""
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else None
    answer = JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.http_status,
        headers=headers,
    )
    websocket.state.error = error
    try:
        await websocket.send_denial_response(answer)
    except RuntimeError:
        await websocket.close(1008, error.message[:120])


async def _connect(websocket: WebSocket, upstream: Upstream, path: str) -> ClientConnection:
    sock = await relay_socket(upstream)
    query = websocket.url.query
    host = websocket.headers.get("host") or websocket.url.netloc
    uri = f"ws://{host}{path or '/'}" + (f"?{query}" if query else "")
    headers = [
        (name, value)
        for name, value in upstream_headers(websocket)
        if name not in _CLIENT_SET and not name.startswith("sec-websocket-")
    ]
    offered = websocket.scope.get("subprotocols") or []
    try:
        return await connect(
            uri,
            sock=sock,
            origin=websocket.headers.get("origin"),  # type: ignore[arg-type]
            subprotocols=[Subprotocol(p) for p in offered] or None,
            additional_headers=headers,
            user_agent_header=websocket.headers.get("user-agent"),
            compression=None,  # one machine away: deflating costs CPU and saves nothing
            open_timeout=HANDSHAKE_TIMEOUT_S,
            ping_interval=None,  # the browser's side keeps itself alive; this one is local
            max_size=MAX_MESSAGE,
            max_queue=MAX_QUEUE,
        )
    except InvalidStatus:
        sock.close()
        raise
    except (InvalidHandshake, OSError, TimeoutError, ValueError) as exc:
        sock.close()
        raise WorkspaceUnreachable(
            f"port {upstream.port} in the workspace did not accept the WebSocket "
            f"({type(exc).__name__})"
        ) from None


def _refusal_response(refused: InvalidStatus) -> Response:
    """The upstream's own answer to the upgrade (a 403 from an origin check, a 404...)."""
    answer = refused.response
    media_type = answer.headers.get("content-type")
    return Response(
        answer.body[:REFUSAL_BODY_MAX] if answer.body else b"",
        status_code=answer.status_code,
        media_type=media_type,
    )


async def _relay(websocket: WebSocket, remote: ClientConnection) -> None:
    tasks = [
        asyncio.create_task(_browser_to_upstream(websocket, remote)),
        asyncio.create_task(_upstream_to_browser(remote, websocket)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    both_open = (websocket.client_state, websocket.application_state) == (
        WebSocketState.CONNECTED,
        WebSocketState.CONNECTED,
    )
    if both_open:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(1011, "the workspace's side ended")


async def _browser_to_upstream(websocket: WebSocket, remote: ClientConnection) -> None:
    """Until the browser closes: then the upstream is closed with the browser's code."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            code = _sendable(message.get("code") or 1000, gone=1001)
            await remote.close(code, (message.get("reason") or "")[:120])
            return
        data: Any = message.get("bytes")
        if data is None:
            data = message.get("text") or ""
        try:
            await remote.send(data)
        except ConnectionClosed:
            return


async def _upstream_to_browser(remote: ClientConnection, websocket: WebSocket) -> None:
    """Until the upstream closes: then the browser is closed with the upstream's code."""
    try:
        while True:
            data = await remote.recv()
            if isinstance(data, str):
                await websocket.send_text(data)
            else:
                await websocket.send_bytes(data)
    except ConnectionClosed as closed:
        frame = closed.rcvd
        code = _sendable(frame.code if frame else 1006, gone=1011)
        reason = frame.reason[:120] if frame else "the workspace's side went away"
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code, reason)
    except (WebSocketDisconnect, OSError, RuntimeError):
        return  # the browser went away; the other pump closes the upstream


def _sendable(code: int, gone: int) -> int:
    """``code`` if it may be sent in a close frame; else what it means (``gone`` for an
    abnormal end)."""
    if code == 1006:
        return gone
    return _UNSENDABLE.get(code, code)
