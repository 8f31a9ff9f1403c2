"""HTTP/1.1 to a port in a workspace over relayed streams, bodies streamed both ways (the
IDE downloads big files: nothing is held whole).

httpcore does the HTTP: a network backend whose "TCP connection" is a relayed stream,
inside a small connection pool per upstream (bounded in size and idle time). httpcore keeps
no cookie jar, so nothing of one user's requests is ever replayed in another's."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from dev8.core.errors import Dev8Error, InvalidInput, OperationTimeout, WorkspaceUnreachable
from dev8.server.errors import error_response
from dev8.server.relay.agent import HANDSHAKE_TIMEOUT_S, Upstream, open_stream
from dev8.server.relay.headers import downstream_headers, upstream_headers

FIRST_BYTE_TIMEOUT_S = 60.0  # from the request's last byte to the answer's head
WRITE_TIMEOUT_S = 60.0  # one write to an upstream that stopped reading
POOL_WAIT_S = 30.0  # for a free connection when all of an upstream's are busy
CONNECTIONS_PER_UPSTREAM = 32
KEEPALIVE_S = 30.0  # an idle kept-alive connection
POOL_IDLE_S = 120.0  # an upstream's pool nobody used (a stopped workspace's, say)
POOLS_MAX = 256  # upstreams with a pool, per event loop
SMALL_BODY = 256 * 1024  # streamed without a disconnect watcher (see _RelayedResponse)
CLIENT_CLOSED = 499  # the client went away while its request was being sent on
# httpcore asks whether sniffio is there for every lock and cancellation shield it makes,
# several per request; without it installed, each ask is a failed import that searches all of
# sys.path again (0.3 ms here, over a millisecond per relayed request). A ``None`` entry is
# Python's own "not importable" answer, given at once. (A no-op once sniffio is installed.)
if importlib.util.find_spec("sniffio") is None:
    sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
# No read timeout: the first byte has its deadline, and a body may take as long as it takes.
_TIMEOUTS = {
    "connect": HANDSHAKE_TIMEOUT_S,
    "read": None,
    "write": WRITE_TIMEOUT_S,
    "pool": POOL_WAIT_S,
}


async def proxy_http(
    request: Request, upstream: Upstream, path: str, forwarded_prefix: str = ""
) -> Response:
    """``request`` forwarded to ``path`` (raw: percent-encoded as the client sent it; the
    request's query string is appended) on ``upstream``, and its answer streamed back. A
    failure to reach it is the one-line JSON error (502 unreachable, 504 when it does not
    answer within a minute of the request's end)."""
    pool = await _pools().checkout(upstream)
    try:
        answer = await _send(pool.pool, request, upstream, path, forwarded_prefix)
    except Dev8Error as error:
        pool.release()
        return error_response(request, error)
    except ClientDisconnect:
        pool.release()
        return Response(status_code=CLIENT_CLOSED)  # nobody is there to read it
    except BaseException:
        pool.release()
        raise
    return _RelayedResponse(answer, pool)


async def _send(
    pool: httpcore.AsyncConnectionPool,
    request: Request,
    upstream: Upstream,
    path: str,
    forwarded_prefix: str,
) -> httpcore.Response:
    """The upstream's answer, its head read and its body not yet."""
    query = request.url.query
    target = (path or "/") + (f"?{query}" if query else "")
    headers = upstream_headers(request, forwarded_prefix) + _framing(request)
    url = httpcore.URL(scheme="http", host="127.0.0.1", port=upstream.port, target=target)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as first_byte:

            async def body() -> AsyncIterator[bytes]:
                async for chunk in request.stream():
                    if chunk:
                        yield chunk
                first_byte.reschedule(loop.time() + FIRST_BYTE_TIMEOUT_S)

            return await pool.handle_async_request(
                httpcore.Request(
                    request.method,
                    url,
                    headers=headers,
                    content=body(),
                    extensions={"timeout": _TIMEOUTS},
                )
            )
    except TimeoutError:
        raise OperationTimeout(
            f"port {upstream.port} in the workspace did not answer within "
            f"{FIRST_BYTE_TIMEOUT_S:g} s"
        ) from None
    except httpcore.PoolTimeout:
        raise OperationTimeout(
            f"all {CONNECTIONS_PER_UPSTREAM} connections to port {upstream.port} are busy"
        ) from None
    except httpcore.LocalProtocolError as exc:
        raise InvalidInput(f"the request cannot be relayed: {exc}") from None
    except (httpcore.NetworkError, httpcore.RemoteProtocolError, httpcore.TimeoutException):
        raise WorkspaceUnreachable(
            f"port {upstream.port} in the workspace did not answer in HTTP"
        ) from None


def _framing(request: Request) -> list[tuple[str, str]]:
    """How the body is delimited upstream: the client's length, or chunks (its chunking is
    of its own hop); no header, no body."""
    length = request.headers.get("content-length")
    if length is not None:
        return [("content-length", length)]
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return [("transfer-encoding", "chunked")]
    return []


class _RelayedResponse(StreamingResponse):
    """The upstream's answer, streamed; its connection goes back to the pool (or is
    closed) however the streaming ends, the client going away included."""

    def __init__(self, answer: httpcore.Response, pool: _Pool) -> None:
        super().__init__(_chunks(answer), status_code=answer.status)
        self.raw_headers = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in downstream_headers(_decoded(answer.headers))
        ]
        self.answer = answer
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self._small():
                # No task watching for the client's disconnect (Starlette's way, a task
                # group per answer): a small body is sent whole, and a gone client's sends
                # are dropped by the server.
                await self.stream_response(send)
            else:
                await super().__call__(scope, receive, send)
        finally:
            try:
                await self.answer.aclose()
            finally:
                self.pool.release()

    def _small(self) -> bool:
        """A body of a known length of at most ``SMALL_BODY`` (a static file, say)."""
        length = next((v for k, v in self.raw_headers if k == b"content-length"), b"")
        return length.isdigit() and int(length) <= SMALL_BODY


async def _chunks(answer: httpcore.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_stream():
            yield chunk
    except (httpcore.NetworkError, httpcore.RemoteProtocolError):
        # The head went out already: all that is left is to end the body short, which the
        # client sees as a truncated answer.
        return
    finally:
        # Back to the pool before the client sees the end of the answer, so that its next
        # request finds the connection free.
        await answer.aclose()


def _decoded(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class _RelayedStream(httpcore.AsyncNetworkStream):
    """httpcore's view of a relayed stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("the relayed stream sent nothing in time") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self.writer.write(buffer)
                await self.writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("the relayed stream took nothing in time") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self.writer.transport.abort()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # An idle kept-alive connection with something to read was closed by the
            # other end (or is out of step): the pool must not reuse it.
            return self.reader.at_eof() or self.writer.transport.is_closing()
        if info == "socket":
            return self.writer.get_extra_info("socket")
        return None


class _RelayBackend(httpcore.AsyncNetworkBackend):
    """Every connection the pool makes is a new relayed stream to one upstream."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        reader, writer = await open_stream(self.upstream, timeout or HANDSHAKE_TIMEOUT_S)
        return _RelayedStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class _Pool:
    pool: httpcore.AsyncConnectionPool
    used_at: float = field(default_factory=time.monotonic)
    active: int = 0  # requests whose answers are still streaming

    def release(self) -> None:
        self.active -= 1
        self.used_at = time.monotonic()


class _Pools:
    """The pools of one event loop, one per upstream (agent address, token and port: a
    workspace that restarts elsewhere or is rebuilt gets a new one). Pools nobody used for
    a while are closed, and the least recently used beyond ``POOLS_MAX``."""

    def __init__(self) -> None:
        self.pools: OrderedDict[Upstream, _Pool] = OrderedDict()

    async def checkout(self, upstream: Upstream) -> _Pool:
        await self._evict()
        pool = self.pools.get(upstream)
        if pool is None:
            pool = self.pools[upstream] = _Pool(
                httpcore.AsyncConnectionPool(
                    max_connections=CONNECTIONS_PER_UPSTREAM,
                    keepalive_expiry=KEEPALIVE_S,
                    network_backend=_RelayBackend(upstream),
                )
            )
        self.pools.move_to_end(upstream)
        pool.active += 1
        pool.used_at = time.monotonic()
        return pool

    async def _evict(self) -> None:
        now = time.monotonic()
        idle = [key for key, pool in self.pools.items() if not pool.active]
        stale = [key for key in idle if now - self.pools[key].used_at > POOL_IDLE_S]
        excess = idle[: max(0, len(self.pools) - POOLS_MAX - len(stale))]
        for key in {*stale, *excess}:
            await self.pools.pop(key).pool.aclose()


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pools] = weakref.WeakKeyDictionary()


def _pools() -> _Pools:
    loop = asyncio.get_running_loop()
    pools = _by_loop.get(loop)
    if pools is None:
        pools = _by_loop[loop] = _Pools()
    return pools
