"""Tunnels: a TCP stream to a port inside a running workspace, relayed by the server.

The stream is a WebSocket to ``/api/v1/workspaces/{name}/tunnel/{port}`` (the server's
address with ``ws``/``wss`` for ``http``/``https``), authenticated with the client's token
and verified with the client's TLS context. Binary messages carry the bytes; an empty one
means "no more data from me" (a half-close). The server closes the WebSocket once both
directions are done (code 1000), or with 1011 and a one-line reason when the workspace's
side fails. A refused upgrade (401, 404, 409...) raises the dev8 error its JSON names::

    with client.open_tunnel("web", 8000) as tunnel:
        tunnel.write(b"GET / HTTP/1.0\\r\\n\\r\\n")
        tunnel.close_write()
        while data := tunnel.read():
            ...
"""

from __future__ import annotations

import contextlib
import ssl
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
)
from websockets.sync.client import ClientConnection, connect

from dev8 import __version__
from dev8.core.errors import Dev8Error, InvalidInput, ServerUnavailable, WorkspaceUnreachable

if TYPE_CHECKING:
    from dev8.client.api import APIClient

MAX_MESSAGE = 1 << 20  # the endpoint's limit, both ways
PING_INTERVAL_S = 20.0  # keeps idle tunnels (an SSH session for hours) through proxies
PING_TIMEOUT_S = 20.0
OPEN_TIMEOUT_S = 10.0
INTERNAL_ERROR = 1011


def tunnel_url(base_url: str, name: str, port: int, owner: str | None = None) -> str:
    """The tunnel endpoint's WebSocket address for ``base_url`` (any path prefix kept). Pure."""
    parts = urlsplit(base_url)
    schemes = {"http": "ws", "https": "wss"}
    if parts.scheme not in schemes:
        raise InvalidInput(f"{base_url!r} is not an http:// or https:// server address")
    path = f"{parts.path.rstrip('/')}/api/v1/workspaces/{quote(name, safe='')}/tunnel/{port}"
    query = urlencode({"owner": owner}) if owner else ""
    return urlunsplit((schemes[parts.scheme], parts.netloc, path, query, ""))


def open_tunnel(api: APIClient, name: str, port: int, owner: str | None = None) -> Tunnel:
    """Open a tunnel to ``port`` inside ``name`` (``owner``'s, for admins)."""
    return connect_tunnel(api.base_url, api.token, api.ssl_context, name, port, owner)


def connect_tunnel(
    base_url: str,
    token: str | None,
    tls: ssl.SSLContext,
    name: str,
    port: int,
    owner: str | None = None,
) -> Tunnel:
    """``open_tunnel`` without an ``APIClient``: all `ssh dev8.NAME` needs, and no httpx."""
    url = tunnel_url(base_url, name, port, owner)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        connection = connect(
            url,
            additional_headers=headers,
            ssl=tls if url.startswith("wss:") else None,
            max_size=MAX_MESSAGE,
            ping_interval=PING_INTERVAL_S,
            ping_timeout=PING_TIMEOUT_S,
            open_timeout=OPEN_TIMEOUT_S,
            compression=None,  # what goes through is mostly encrypted (SSH) or compressed
            user_agent_header=f"dev8/{__version__}",
            legacy=True,  # a connection that outlives this call, closed by ``Tunnel.close``
            create_connection=_BulkConnection,
        )
    except InvalidStatus as exc:
        from dev8.client.api import error_of  # a refusal: httpx's import cost is fine here

        response = exc.response
        raise error_of(response.status_code, bytes(response.body or b""), url) from exc
    except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
        raise ServerUnavailable(f"cannot open a tunnel through {base_url}: {exc}") from exc
    assert isinstance(connection, ClientConnection)  # what legacy=True returns
    return Tunnel(connection, f"{name}:{port}")


class _BulkConnection(ClientConnection):
    """Reads the socket 1 MiB at a time, not 64 KiB: a relayed scp is bound by the CPU each
    read costs."""

    recv_bufsize = 1024 * 1024


class Tunnel:
    """A blocking byte stream over an open tunnel WebSocket. One thread may read while
    another writes."""

    def __init__(self, connection: ClientConnection, target: str) -> None:
        self._connection = connection
        self._target = target
        self._read_done = False
        self._write_done = False

    def read(self) -> bytes:
        """The next bytes the workspace's side sent (at most 1 MiB); ``b""`` once it has
        finished sending."""
        if self._read_done:
            return b""
        try:
            message = self._connection.recv(decode=False)
        except ConnectionClosedOK:
            message = b""
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc
        if isinstance(message, str):  # decode=False gives bytes; a text frame is garbage here
            raise WorkspaceUnreachable(f"the tunnel to {self._target} sent text, not bytes")
        if not message:
            self._read_done = True
        return bytes(message)

    def write(self, data: bytes) -> None:
        """Send all of ``data`` (nothing for ``b""``: an empty message is a half-close)."""
        view = memoryview(data)
        try:
            for start in range(0, len(view), MAX_MESSAGE):
                self._connection.send(view[start : start + MAX_MESSAGE], text=False)
        except ConnectionClosed as exc:
            raise self._closed(exc) from exc

    def close_write(self) -> None:
        """Tell the workspace's side that no more data comes from here."""
        if self._write_done:
            return
        self._write_done = True
        with contextlib.suppress(ConnectionClosed):  # then the whole tunnel is done anyway
            self._connection.send(b"", text=False)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _closed(self, exc: ConnectionClosed) -> Dev8Error:
        """The error an abnormal closure means: the workspace side failed (1011, with the
        server's one-line reason), or the connection to the server was lost."""
        received = exc.rcvd
        if received is not None and received.code == INTERNAL_ERROR:
            reason = received.reason or f"the tunnel to {self._target} failed"
            return WorkspaceUnreachable(reason)
        return ServerUnavailable(f"the tunnel to {self._target} was cut: {exc}")
