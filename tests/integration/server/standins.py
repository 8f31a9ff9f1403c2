"""Stand-ins for what runs inside a workspace, for the relay's tests (no engine).

``StandInAgent`` replaces dev8's agent: an asyncio server that speaks the relay upgrade of
the agent protocol (``GET /relay/{port}``, bearer token, 101, then raw bytes with
half-closes passed on) to ports on this machine's loopback, or misbehaves on purpose
(``endless``: headers that never end; ``silent``: never answers; ``reset``: a relay
that is reset right after its 101). Behind it: a TCP echo,
a server that speaks first like sshd, and one that answers only after the other side's EOF.
Everything runs on one background event loop (``LoopThread``), so that plain synchronous
tests can drive it."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n"
BANNER = b"SSH-2.0-standin\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopThread:
    """An event loop running in a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.run(_cancel_others())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def serve(self, handler: Handler) -> int:
        """Serve ``handler`` on a free loopback port; the port."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            except asyncio.CancelledError:
                writer.close()  # the loop's end: the task ends quietly

        async def start() -> int:
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            return server.sockets[0].getsockname()[1]

        return self.run(start())


async def _cancel_others() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on (a half-close)."""
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof() and not sink.is_closing():
        sink.write_eof()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await pipe(reader, writer)
    finally:
        writer.close()


async def speaks_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Like sshd: its banner goes out at once, before the client says anything."""
    writer.write(BANNER)
    await writer.drain()
    await echo(reader, writer)


async def digest_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Reads until the client's EOF, then answers "<bytes> <sha256>" and closes: proves that
    a half-close went through and that the other direction still works after it."""
    digest, size = hashlib.sha256(), 0
    while data := await reader.read(65536):
        digest.update(data)
        size += len(data)
    writer.write(f"{size} {digest.hexdigest()}".encode())
    await writer.drain()
    writer.close()


class StandInAgent:
    """The relay of dev8's agent, as protocols.md section 1 describes it. ``tokens``: the
    agent tokens it accepts. ``coalesce``: the 101 goes out in one write with what the port
    said first (as a fast agent's may), so that nothing after the 101 may be lost."""

    def __init__(self, loops: LoopThread, tokens: set[str] | None = None) -> None:
        self.loops = loops
        self.tokens = tokens if tokens is not None else set()
        self.mode = "relay"  # or "endless", "silent", "reset" (right after the 101)
        self.coalesce = False
        self.relayed: list[int] = []  # the ports of the relays it opened
        self.port = loops.serve(self._serve)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if self.mode == "endless":
                await _endless_headers(writer)
            elif self.mode == "silent":
                await reader.read()
            else:
                await self._relay(head, reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _relay(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, *lines = head.decode("latin-1").split("\r\n")
        _method, target, _version = request_line.split(" ")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines if line)
        }
        port = target.removeprefix("/relay/")
        if not target.startswith("/relay/"):
            return await _refuse(writer, 404, "not_found")
        if not port.isdigit() or headers.get("upgrade", "").lower() != "dev8-relay":
            return await _refuse(writer, 400, "invalid_input")
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return await _refuse(writer, 401, "unauthorized")
        try:
            inner_reader, inner_writer = await asyncio.open_connection("127.0.0.1", int(port))
        except OSError:
            return await _refuse(writer, 502, "unreachable")
        self.relayed.append(int(port))
        first = await inner_reader.read(65536) if self.coalesce else b""
        writer.write(SWITCH + first)
        await writer.drain()
        if self.mode == "reset":
            inner_writer.close()
            return _reset(writer)
        try:
            await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer))
        finally:
            inner_writer.close()


async def _refuse(writer: asyncio.StreamWriter, status: int, code: str) -> None:
    body = f'{{"error": "{code}", "message": "refused by the stand-in"}}'.encode()
    writer.write(
        f"HTTP/1.1 {status} Refused\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with a TCP reset, as a crashing agent's kernel would."""
    writer.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
    )
    writer.transport.abort()


async def _endless_headers(writer: asyncio.StreamWriter) -> None:
    """A hostile agent: a 101 whose headers never end (until the other side hangs up)."""
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
    while True:
        writer.write(b"X-Padding: " + b"a" * 1000 + b"\r\n")
        await writer.drain()
