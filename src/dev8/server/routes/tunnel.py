"""``WebSocket /api/v1/workspaces/{name}/tunnel/{port}``: a raw byte stream to a port of a
running workspace, for ``dev8 ssh`` and ``dev8 port-forward``. Authenticated with the API
token before the upgrade; refusals are HTTP answers with the one-line JSON error. Every
attempt is in the audit log (the request recorder sees plain HTTP only)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket
from fastapi.concurrency import run_in_threadpool

from dev8.core.audit import AuditEntry
from dev8.core.clock import utcnow
from dev8.core.errors import Dev8Error, InvalidInput
from dev8.core.users import User
from dev8.server.context import ServerContext
from dev8.server.deps import _scope as scope_of
from dev8.server.deps import bearer_user
from dev8.server.relay import Upstream, deny, open_stream, upstream_for
from dev8.server.relay.tunnel import pump_tunnel

router = APIRouter(tags=["workspaces"])
log = logging.getLogger("dev8.server")


@router.websocket("/api/v1/workspaces/{name}/tunnel/{port}")
async def tunnel(websocket: WebSocket, name: str, port: str, owner: str | None = None) -> None:
    context: ServerContext = websocket.app.state.context
    user: User | None = None
    try:
        user = await bearer_user(websocket, context)
        upstream = await _upstream(context, user, owner, name, port)
        reader, writer = await open_stream(upstream)
    except Dev8Error as error:
        await _audit(context, websocket, user, error.http_status, error)
        await deny(websocket, error)
        return
    try:
        await _audit(context, websocket, user, 101, None)
        await websocket.accept()
    except BaseException:
        writer.transport.abort()
        raise
    await pump_tunnel(websocket, reader, writer)


async def _upstream(
    context: ServerContext, user: User, owner: str | None, name: str, port: str
) -> Upstream:
    """The port of the workspace ``name`` in the caller's scope (``?owner=`` for admins;
    another member's workspace is a 404, as for every route)."""
    if not port.isdigit() or len(port) > 5:
        raise InvalidInput(f"port {port[:16]!r} is not a number between 1 and 65535")
    scope = await scope_of(context, user, owner)
    assert scope.owner is not None
    return await run_in_threadpool(upstream_for, context, scope.owner, name, int(port))


async def _audit(
    context: ServerContext,
    websocket: WebSocket,
    user: User | None,
    status: int,
    error: Dev8Error | None,
) -> None:
    query = websocket.url.query
    port = websocket.path_params.get("port", "")
    entry = AuditEntry(
        at=utcnow(),
        actor=user.name if user else "anonymous",
        user_id=user.id if user else None,
        source=websocket.client.host if websocket.client else "unknown",
        method="WEBSOCKET",
        path=websocket.url.path + (f"?{query}" if query else ""),
        status=status,
        error=error.code if error else "",
        message=error.message if error else f"tunnel opened to port {port}",
    )
    await run_in_threadpool(context.store.audit.record, entry)
