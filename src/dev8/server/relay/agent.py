"""Opening a stream through a workspace's agent: the ``GET /relay/{port}`` upgrade of the
agent protocol. The agent is hostile input (a member is root in their workspace): the
handshake is bounded in time and in size, and nothing it says is shown to a user."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from dev8.core.environment import AGENT_TOKEN
from dev8.core.errors import Busy, Conflict, Dev8Error, InvalidInput, WorkspaceUnreachable
from dev8.server.context import ServerContext
from dev8.service.workspaces import require_live

HANDSHAKE_TIMEOUT_S = 10.0
HEAD_LIMIT = 8 * 1024  # the agent's answer to the upgrade, status line and headers
STREAM_LIMIT = 256 * 1024  # the StreamReader's buffer high-water mark (reads pause at twice)
UPSTREAM_TTL_S = 2.0
UPSTREAMS_MAX = 4096


@dataclass(frozen=True)
class Upstream:
    """Where one stream goes: ``port`` inside the workspace whose agent is at ``agent_url``."""

    agent_url: str  # e.g. "http://127.0.0.1:49153" (Workspace.agent_url)
    token: str = field(repr=False)  # the workspace's agent token: never in a log line
    port: int


def upstream_for(context: ServerContext, owner: str, name: str, port: int) -> Upstream:
    """The running workspace ``owner/name``'s ``port``: ``NotFound`` if there is no such
    workspace, ``Conflict`` unless it runs, ``InvalidInput`` for a port outside 1..65535.
    Reads the store only (sync: call it in a thread pool)."""
    if not 1 <= port <= 65535:
        raise InvalidInput(f"port {port} is not between 1 and 65535")
    workspace = context.service(owner).find(name)
    require_live(workspace)
    if not workspace.agent_url:
        raise Conflict(f"workspace {name} is starting; its agent has no address yet")
    return Upstream(workspace.agent_url, workspace.secrets[AGENT_TOKEN], port)


class UpstreamCache:
    """``upstream_for``'s answers kept for ``ttl`` seconds: the IDE asks for dozens of files at
    once, and each lookup is a database query in a worker thread, measured as a third of the
    server's CPU per proxied request. What is kept is only where a running workspace's agent
    is and its token; who may use it is decided on every request before this is asked, and
    never kept here. A workspace stopped, removed or rebuilt within ``ttl`` is reached at its
    old address at most that long: its agent is gone, or refuses the old token."""

    def __init__(
        self,
        context: ServerContext,
        lookup: Callable[[ServerContext, str, str, int], Upstream] = upstream_for,
        ttl: float = UPSTREAM_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.context, self.lookup, self.ttl, self._clock = context, lookup, ttl, clock
        self._found: dict[tuple[str, str, int], tuple[float, Upstream]] = {}

    async def get(self, owner: str, name: str, port: int) -> Upstream:
        """As ``upstream_for`` (its errors are never kept)."""
        key = (owner, name, port)
        now = self._clock()
        found = self._found.get(key)
        if found is not None and now - found[0] < self.ttl:
            return found[1]
        upstream = await run_in_threadpool(self.lookup, self.context, owner, name, port)
        if len(self._found) >= UPSTREAMS_MAX:
            self._found.clear()
        self._found[key] = (now, upstream)
        return upstream


def live_upstream(
    connection: HTTPConnection, owner: str, name: str, port: int
) -> Awaitable[Upstream]:
    """``upstream_for`` through the application's ``UpstreamCache`` (``dev8.server.app``)."""
    cache: UpstreamCache = connection.app.state.upstreams
    return cache.get(owner, name, port)


async def open_stream(
    upstream: Upstream, timeout: float = HANDSHAKE_TIMEOUT_S
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A byte stream to ``upstream``'s port, the agent's handshake done. What the port sends
    at once (sshd's banner) is the first thing the reader gives."""
    sock = await relay_socket(upstream, timeout)
    try:
        return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
    except BaseException:
        sock.close()
        raise


async def relay_socket(upstream: Upstream, timeout: float = HANDSHAKE_TIMEOUT_S) -> socket.socket:
    """A connected non-blocking socket to ``upstream``'s port, the agent's handshake done and
    not one byte past it read (the answer is peeked at, then exactly its head is taken), so
    that it can be handed to any asyncio protocol (streams, a WebSocket client)."""
    host, port = agent_address(upstream.agent_url)
    loop = asyncio.get_running_loop()
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(timeout):
            sock = await _connect(loop, host, port)
            await loop.sock_sendall(sock, handshake_request(upstream))
            head = await _read_head(loop, sock)
        status = head_status(head)
        if status != 101:
            raise refusal(status, upstream.port)
        return sock
    except BaseException as exc:
        if sock is not None:
            sock.close()
        if isinstance(exc, TimeoutError):
            raise WorkspaceUnreachable(
                f"the workspace's agent did not answer within {timeout:g} s"
            ) from None
        if isinstance(exc, OSError):
            reason = exc.strerror or type(exc).__name__
            raise WorkspaceUnreachable(f"cannot reach the workspace's agent: {reason}") from None
        raise


def agent_address(agent_url: str) -> tuple[str, int]:
    parts = urlsplit(agent_url)
    if parts.scheme != "http" or not parts.hostname:
        raise WorkspaceUnreachable(f"the workspace's agent address {agent_url!r} is not http://")
    return parts.hostname, parts.port or 80


def handshake_request(upstream: Upstream) -> bytes:
    """The upgrade request of the agent protocol (section 1)."""
    if any(c in upstream.token for c in "\r\n") or not upstream.token:
        raise WorkspaceUnreachable("the workspace has no usable agent token; rebuild it")
    host = urlsplit(upstream.agent_url).netloc
    return (
        f"GET /relay/{upstream.port} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        f"Authorization: Bearer {upstream.token}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: dev8-relay\r\n"
        "\r\n"
    ).encode()


def head_status(head: bytes) -> int:
    """The status code of an HTTP response head; ``WorkspaceUnreachable`` if it is not one."""
    version, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
    code = rest[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise WorkspaceUnreachable("the workspace's agent did not answer in HTTP")
    return int(code)


def refusal(status: int, port: int) -> Dev8Error:
    """The error for an agent's refusal. Its own message is not passed on: it is text from
    inside the workspace, and the status says enough."""
    if status == 502:
        return WorkspaceUnreachable(f"nothing listens on port {port} in the workspace")
    if status == 503:
        return Busy("the workspace's agent has too many streams open; retry shortly")
    if status in (401, 403):
        return WorkspaceUnreachable("the workspace's agent refused the server's token")
    if status in (400, 404, 405):
        return WorkspaceUnreachable(
            "the workspace's agent cannot relay (an older image?); rebuild the workspace"
        )
    return WorkspaceUnreachable(f"the workspace's agent refused the stream ({status})")


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _name, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        # Interactive traffic (keystrokes, WebSocket messages): no Nagle delay on this hop,
        # whichever event loop makes the transport.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error


async def _read_head(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytes:
    """The answer's head up to its blank line, and not one byte more: bytes the port sends
    right after the upgrade stay in the socket for whoever reads it next."""
    head = b""
    while True:
        room = HEAD_LIMIT - len(head)
        if room <= 0:
            raise WorkspaceUnreachable(
                f"the workspace's agent sent more than {HEAD_LIMIT // 1024} KiB of headers"
            )
        await _readable(loop, sock)
        try:
            peeked = sock.recv(room, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue
        if not peeked:
            raise WorkspaceUnreachable("the workspace's agent closed the connection")
        tail = head[-3:]
        end = (tail + peeked).find(b"\r\n\r\n")
        take = len(peeked) if end < 0 else end + 4 - len(tail)
        head += sock.recv(take)  # those bytes are there: they were just peeked at
        if end >= 0:
            return head


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
