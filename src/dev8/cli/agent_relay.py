"""The client side of the agent's relay (protocols section 1), blocking: `dev8 port-forward`
in local mode reaches a port inside the workspace through the agent, the one port of it
published on this machine besides the IDE and sshd.

    GET /relay/{port} HTTP/1.1 + Authorization: Bearer <agent token> + Upgrade: dev8-relay
    -> 101, then raw bytes both ways; or a JSON refusal (400, 401, 403, 502, 503).

The server has its own (asynchronous) client of this protocol; the CLI never imports the
server's code.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from dev8.cli.relay import SocketStream
from dev8.core.errors import Busy, Dev8Error, WorkspaceUnreachable

HANDSHAKE_TIMEOUT_S = 10.0
HEAD_LIMIT = 8 * 1024


def handshake_request(agent_url: str, token: str, port: int) -> bytes:
    """The upgrade request for ``port``. Pure."""
    if not token or any(c in token for c in "\r\n"):
        raise WorkspaceUnreachable("the workspace has no usable agent token; rebuild it")
    return (
        f"GET /relay/{port} HTTP/1.1\r\n"
        f"Host: {urlsplit(agent_url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: dev8-relay\r\n"
        "\r\n"
    ).encode()


def split_head(received: bytes) -> tuple[int, bytes] | None:
    """The status of a complete answer head in ``received`` and the bytes after it (the
    port's first bytes: sshd speaks first); None while the head is incomplete. Pure."""
    head, found, rest = received.partition(b"\r\n\r\n")
    if not found:
        return None
    version, _, status = head.split(b"\r\n", 1)[0].partition(b" ")
    code = status[:3]
    if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise WorkspaceUnreachable("the workspace's agent did not answer in HTTP")
    return int(code), rest


def refusal(status: int, port: int) -> Dev8Error:
    """The error an agent's refusal means, by its status."""
    if status == 502:
        return WorkspaceUnreachable(f"nothing listens on port {port} in the workspace")
    if status == 503:
        return Busy("the workspace's agent has too many streams open; retry shortly")
    if status in (400, 404, 405):
        return WorkspaceUnreachable(
            "the workspace's agent cannot relay (an older image?); run `dev8 rebuild NAME`"
        )
    return WorkspaceUnreachable(f"the workspace's agent refused the stream ({status})")


def open_agent_relay(
    agent_url: str, token: str, port: int, timeout: float = HANDSHAKE_TIMEOUT_S
) -> SocketStream:
    """A stream to ``port`` inside the workspace whose agent is at ``agent_url``."""
    parts = urlsplit(agent_url)
    if parts.scheme != "http" or not parts.hostname:
        raise WorkspaceUnreachable(f"the workspace's agent address {agent_url!r} is not http://")
    request = handshake_request(agent_url, token, port)
    try:
        sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WorkspaceUnreachable(f"cannot reach the workspace's agent: {reason}") from None
    try:
        sock.sendall(request)
        status, rest = _read_head(sock)
    except BaseException:
        sock.close()
        raise
    if status != 101:
        sock.close()
        raise refusal(status, port)
    return SocketStream(sock, pending=rest)


def _read_head(sock: socket.socket) -> tuple[int, bytes]:
    received = b""
    try:
        while (answer := split_head(received)) is None:
            if len(received) > HEAD_LIMIT:
                raise WorkspaceUnreachable("the workspace's agent sent too long an answer")
            chunk = sock.recv(HEAD_LIMIT)
            if not chunk:
                raise WorkspaceUnreachable("the workspace's agent closed the connection")
            received += chunk
    except TimeoutError:
        raise WorkspaceUnreachable("the workspace's agent did not answer in time") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise WorkspaceUnreachable(f"the workspace's agent failed: {reason}") from None
    return answer
