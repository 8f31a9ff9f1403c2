"""Raw bytes between a WebSocket and a relayed stream (``dev8 ssh``, ``dev8 port-forward``):
binary messages carry the bytes, an empty one means "no more data from me" (a half-close),
and the WebSocket closes with 1000 when both directions are done, 1011 with a one-line
reason when the workspace's side fails. Idle streams are fine: SSH sessions idle for hours."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

MAX_MESSAGE = 1024 * 1024
READ_CHUNK = MAX_MESSAGE


class _ClientGone(Exception):
    """The WebSocket's client went away: nothing more to tell it."""


class _Refused(Exception):
    """The client broke the tunnel's rules; closed with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


async def pump_tunnel(
    websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Relay until both directions are done or either fails, then close both ends."""
    # asyncio reads a socket 256 KiB at a time; 1 MiB reads make 1 MiB messages when the
    # workspace's side is ahead, and the CPU each message costs (here and in the client) is
    # what bounds a relayed scp. (An attribute of asyncio's own socket transports only.)
    if hasattr(writer.transport, "max_size"):
        writer.transport.max_size = READ_CHUNK
    tasks = [
        asyncio.create_task(_to_client(reader, websocket)),
        asyncio.create_task(_to_upstream(websocket, writer)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.transport.abort()
    failure = next((task.exception() for task in done if task.exception()), None)
    code, reason = _close_for(failure)
    if code:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(code, reason)


def _close_for(failure: BaseException | None) -> tuple[int, str]:
    """The close code and reason for how the pumps ended (0: the client is gone)."""
    if failure is None:
        return 1000, ""
    if isinstance(failure, _ClientGone):
        return 0, ""
    if isinstance(failure, _Refused):
        return failure.code, failure.reason
    if isinstance(failure, OSError):
        return 1011, f"the stream inside the workspace failed: {failure.strerror or 'reset'}"
    return 1011, f"the stream inside the workspace failed: {type(failure).__name__}"


async def _to_client(reader: asyncio.StreamReader, websocket: WebSocket) -> None:
    while chunk := await reader.read(READ_CHUNK):
        await _send(websocket, chunk)
    await _send(websocket, b"")  # the workspace's side is done sending


async def _send(websocket: WebSocket, data: bytes) -> None:
    try:
        await websocket.send_bytes(data)
    except (WebSocketDisconnect, RuntimeError) as exc:
        raise _ClientGone() from exc


async def _to_upstream(websocket: WebSocket, writer: asyncio.StreamWriter) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise _ClientGone()
        data = message.get("bytes")
        if data is None:
            raise _Refused(1003, "the tunnel carries binary messages only")
        if len(data) > MAX_MESSAGE:
            raise _Refused(1009, f"messages are at most {MAX_MESSAGE // 1024} KiB")
        if not data:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(data)
        await writer.drain()
