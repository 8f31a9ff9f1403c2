"""Relayed TCP streams: the agent as the one door to the services inside the workspace.

An authorized ``GET /relay/{port}`` upgrade (``httpapi``) ends here: the agent connects to
127.0.0.1:{port} and copies bytes both ways until both directions are done. An EOF is passed
on as a half-close (``shutdown(SHUT_WR)``); a reset on either side ends both directions.

One thread per direction, blocking sockets. The HTTP server already gives each connection a
thread, so a relay adds one more; an idle thread costs tens of KB of resident memory (the
stack pages it touched), so even 512 relays stay within a few MB over the agent's own, and a
blocking ``sendall`` is the backpressure for free. A selectors loop would save those threads
but needs its own buffering and flow control per direction, which is where relays go wrong.
``recv`` of up to 256 KiB hands whole chunks to ``sendall``: no per-byte Python work, about
1.4 GB/s on loopback (``os.splice`` through a pipe measured slower: its 64 KiB pipe means more
system calls), far above what SSH's encryption sustains.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

from dev8.core.errors import Busy, InvalidInput, WorkspaceUnreachable

RELAY_LIMIT = 512
CONNECT_TIMEOUT_S = 3.0
CHUNK = 256 * 1024
# Relayed connections come from this loopback address rather than 127.0.0.1, so that
# ``activity`` (which leaves out 127.0.0.1, the agent's own health probes) counts a relayed
# SSH session or IDE connection as a user's, and sshd's log tells them apart from probes.
RELAY_SOURCE = "127.0.0.2"
# The dev8 server may vanish without closing (host crash, network cut): keepalives find the
# dead peer within about two minutes so its relay does not hold a slot forever.
_KEEPALIVE = ((socket.SO_KEEPALIVE, 1),)
_TCP_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4))
_RESET_LINGER = struct.pack("ii", 1, 0)


def parse_port(text: str) -> int:
    """The TCP port ``text`` names, else ``InvalidInput``."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise InvalidInput(f"invalid port {text[:20]!r}: use an integer from 1 to 65535")
    return int(text)


class RelaySlots:
    """At most ``limit`` relays open at once; the next one is refused with ``Busy``."""

    def __init__(self, limit: int = RELAY_LIMIT) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        with self._lock:
            if self.open >= self.limit:
                raise Busy(f"the agent already relays {self.limit} streams; retry when some close")
            self.open += 1
        try:
            yield
        finally:
            with self._lock:
                self.open -= 1


def connect_local(port: int, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """A blocking connection to 127.0.0.1:``port``, else ``WorkspaceUnreachable``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        _bind_relay_source(sock)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise WorkspaceUnreachable(f"nothing listens on port {port} in the workspace") from exc
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _bind_relay_source(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # a loopback with only 127.0.0.1: use it
        sock.bind((RELAY_SOURCE, 0))


def prepare_client(sock: socket.socket) -> None:
    """Blocking, no Nagle delay for interactive traffic, keepalives for a vanished peer."""
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for option, value in _KEEPALIVE:
        sock.setsockopt(socket.SOL_SOCKET, option, value)
    for name, value in _TCP_KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


def splice(client: socket.socket, upstream: socket.socket, pending: bytes = b"") -> None:
    """Copy bytes both ways until both directions are done or either side resets; then
    close ``upstream`` (``client`` belongs to the HTTP server, which closes it).
    ``pending`` is what the client sent after its request that the server already read."""
    back = threading.Thread(target=_pump, args=(upstream, client), name="relay", daemon=True)
    back.start()
    try:
        if pending:
            upstream.sendall(pending)
        _pump(client, upstream)
    except OSError:
        _reset(client, upstream)
    finally:
        back.join()
        upstream.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """One direction: ``source`` to ``target`` until EOF, passed on as a half-close."""
    try:
        while data := source.recv(CHUNK):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:  # a reset, a vanished peer, or the other pump tore both down
        _reset(source, target)


def _reset(*sockets: socket.socket) -> None:
    """End both directions at once: wakes the other pump, and the close sends a reset."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
            sock.shutdown(socket.SHUT_RDWR)
