"""Stand-ins for what runs inside a workspace, for tests of the relay, the tunnel, the
browser's door and the CLI's remote access without an engine.

``StandInAgent`` replaces dev8's agent: it speaks the relay upgrade of the agent protocol
(protocols.md section 1: ``GET /relay/{port}``, bearer token, 101, then raw bytes with
half-closes passed on) to ports on this machine's loopback, or misbehaves on purpose.
Behind it, in place of the workspace's servers: TCP handlers (``echo``, ``says_first`` like
sshd, ``digest_after_eof``), ``EchoHttp`` (a web application that answers every request with
what it received, as JSON; in place of code-server or a user's app) and ``EchoWebSocket``
(a WebSocket server that sends every message back). The agent and the TCP handlers run on
one background event loop (``LoopThread``), so that plain synchronous tests can drive them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from websockets.sync.server import ServerConnection, serve

T = TypeVar("T")
SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n"
BANNER = b"SSH-2.0-standin\r\n"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopThread:
    """An event loop running in a thread of its own; on exit its servers are closed and its
    tasks cancelled."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers: list[asyncio.Server] = []

    def __enter__(self) -> LoopThread:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.run(self._wind_down())
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
            self.servers.append(server)
            return server.sockets[0].getsockname()[1]

        return self.run(start())

    async def _wind_down(self) -> None:
        for server in self.servers:
            server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)


# What listens inside the workspace: TCP --------------------------------------------------
async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until EOF, then pass the EOF on (a half-close)."""
    while data := await source.read(65536):
        sink.write(data)
        await sink.drain()
    if sink.can_write_eof() and not sink.is_closing():
        sink.write_eof()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Sends everything back; passes the end on."""
    try:
        await pipe(reader, writer)
    finally:
        writer.close()


def says_first(first: bytes) -> Handler:
    """Sends ``first`` at once, before the client says anything (as sshd sends its banner),
    then echoes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(first)
        await writer.drain()
        await echo(reader, writer)

    return handle


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


# The agent ---------------------------------------------------------------------------------
class StandInAgent:
    """The relay of dev8's agent, as protocols.md section 1 describes it.

    ``tokens``: the agent tokens it accepts (a set the test may add to). ``ports``: where a
    workspace port leads. Given (a dict the test may change), port N leads to ``ports[N]``
    on this machine's loopback and any port not in it has nothing behind it (502); not
    given, port N leads to the same port on the loopback.
    ``mode``: "relay", or misbehaving on purpose: "endless" (a 101 whose headers never end),
    "silent" (never answers), "reset" (the relay is reset right after its 101).
    ``coalesce``: the 101 goes out in one write with what the port said first (as a fast
    agent's may), so that nothing after the 101 may be lost."""

    def __init__(
        self,
        loops: LoopThread,
        tokens: Iterable[str] = (),
        ports: dict[int, int] | None = None,
    ) -> None:
        self.tokens = set(tokens)
        self.mapped_only = ports is not None
        self.ports: dict[int, int] = ports if ports is not None else {}
        self.mode = "relay"
        self.coalesce = False
        self.url = f"http://127.0.0.1:{loops.serve(self._serve)}"

    async def _open(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to where workspace ``port`` leads; OSError when nothing listens there."""
        if self.mapped_only and port not in self.ports:
            raise ConnectionRefusedError(f"port {port} is not in the stand-in's map")
        return await asyncio.open_connection("127.0.0.1", self.ports.get(port, port))

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
            return await _refuse(writer, 404, "not_found", "no such path")
        if not port.isdigit() or headers.get("upgrade", "").lower() != "dev8-relay":
            return await _refuse(writer, 400, "invalid_input", "not a relay upgrade")
        if headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return await _refuse(writer, 401, "unauthorized", "wrong token")
        try:
            inner_reader, inner_writer = await self._open(int(port))
        except OSError:
            message = f"nothing listens on port {port} in the workspace"
            return await _refuse(writer, 502, "unreachable", message)
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


async def _refuse(writer: asyncio.StreamWriter, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
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


# What listens inside the workspace: HTTP and WebSocket -------------------------------------
class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        answer = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_args: Any) -> None:
        pass


class EchoHttp:
    """A web application that answers every request with its method, path (as sent, query
    included), headers and body, as JSON."""

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoWebSocket:
    """A WebSocket server that sends every message back."""

    def __init__(self) -> None:
        self.server = serve(self._echo, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _echo(self, connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    def close(self) -> None:
        self.server.shutdown()
