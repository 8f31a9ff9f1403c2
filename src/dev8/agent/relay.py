"""Relayed TCP streams: the agent as the one door to the services inside the workspace.

An authorized ``GET /relay/{port}`` upgrade (``httpapi``) ends here: the agent connects to
127.0.0.1:{port} and copies bytes both ways until both directions are done. An EOF is passed
on as a half-close (``shutdown(SHUT_WR)``); a reset or error on either side ends both.

One thread runs every relay (a ``selectors`` loop over non-blocking sockets), not a thread per
direction: measured in the workspace image, a blocked thread costs about 20 KB resident, so
two per relay put 100 open IDE sessions over the agent's 30 MB budget, while here a relay
costs its two sockets. The loop keeps no per-relay buffers either: it peeks at what the
source has (up to 256 KiB), sends what the target takes and only then consumes that much from
the source, so unsent bytes stay in the kernel and a slow reader slows its sender through TCP
itself. One shared buffer, whole chunks per system call, no per-byte Python work.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import struct
import threading
from collections import deque

from dev8.core.errors import Busy, InvalidInput, WorkspaceUnreachable

log = logging.getLogger("dev8.agent")
RELAY_LIMIT = 512
CONNECT_TIMEOUT_S = 3.0
CHUNK = 256 * 1024
# Relayed connections come from this loopback address rather than 127.0.0.1, so that
# ``activity`` (which leaves out 127.0.0.1, the agent's own health probes) counts a relayed
# SSH session or IDE connection as a user's, and sshd's log tells them apart from probes.
RELAY_SOURCE = "127.0.0.2"
# The dev8 server may vanish without closing (host crash, network cut): keepalives find the
# dead peer within about two minutes so its relay does not hold a slot forever.
_TCP_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4))
_RESET_LINGER = struct.pack("ii", 1, 0)
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def parse_port(text: str) -> int:
    """The TCP port ``text`` names, else ``InvalidInput``."""
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 65535:
        raise InvalidInput(f"invalid port {text[:20]!r}: use an integer from 1 to 65535")
    return int(text)


def connect_local(port: int, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """A connection to 127.0.0.1:``port``, else ``WorkspaceUnreachable``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(OSError):  # a loopback with only 127.0.0.1: use that
            sock.bind((RELAY_SOURCE, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise WorkspaceUnreachable(f"nothing listens on port {port} in the workspace") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def prepare_client(sock: socket.socket) -> None:
    """No Nagle delay for interactive traffic, keepalives for a peer that vanished."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _TCP_KEEPALIVE:
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class _Direction:
    """Bytes from ``source`` to ``target``."""

    __slots__ = ("blocked", "done", "source", "target")

    def __init__(self, source: socket.socket, target: socket.socket) -> None:
        self.source, self.target = source, target
        self.blocked = False  # the target was full: wait until it is writable again
        self.done = False  # the source's EOF was passed on

    def pump(self, buffer: memoryview, rounds: int = 4) -> None:
        """Move up to ``rounds`` chunks, or pass the EOF on; OSError if either side failed.
        A few rounds save the loop a wait per chunk; more would let one stream starve others.
        A chunk smaller than the buffer took all there was: the next bytes wait for the
        loop's next round rather than for one more read that would find nothing (an
        interactive message costs three system calls, not four and an exception)."""
        whole = len(buffer)
        for _ in range(rounds):
            try:
                size = self.source.recv_into(buffer, whole, socket.MSG_PEEK)
            except BlockingIOError:
                return
            if size == 0:
                self.target.shutdown(socket.SHUT_WR)
                self.done = True
                return
            try:
                sent = self.target.send(buffer[:size])
            except BlockingIOError:
                sent = 0
            if sent:  # (a size of 0 would mean "the whole buffer")
                # MSG_TRUNC: TCP drops the bytes that went out without copying them again.
                self.source.recv_into(buffer, sent, socket.MSG_TRUNC)
            if sent < size:
                self.blocked = True
                return
            if size < whole:
                return


class _Relay:
    __slots__ = ("ahead", "back", "client", "interest", "upstream")

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.ahead, self.back = _Direction(client, upstream), _Direction(upstream, client)
        self.interest = {client: 0, upstream: 0}

    def _directions(self, sock: socket.socket) -> tuple[_Direction, _Direction]:
        """The direction out of ``sock`` and the one into it."""
        return (self.ahead, self.back) if sock is self.client else (self.back, self.ahead)

    def ready(self, sock: socket.socket, events: int, buffer: memoryview) -> None:
        outgoing, incoming = self._directions(sock)
        if events & _WRITE and not incoming.done:  # (epoll reports an error as both)
            incoming.blocked = False
            incoming.pump(buffer)  # what waited in its source can go now
        if events & _READ and not outgoing.done and not outgoing.blocked:
            outgoing.pump(buffer)

    @property
    def finished(self) -> bool:
        return self.ahead.done and self.back.done

    def wanted(self, sock: socket.socket) -> int:
        outgoing, incoming = self._directions(sock)
        read = _READ if not (outgoing.done or outgoing.blocked) else 0
        return read | (_WRITE if incoming.blocked else 0)


class Relays:
    """Every open relay, spliced by one thread; at most ``limit`` at once."""

    def __init__(self, limit: int = RELAY_LIMIT) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()
        self._arrivals: deque[_Relay] = deque()
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, _READ, None)
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="relays", daemon=True)
        self._thread.start()

    def reserve(self) -> None:
        """Count one more relay, else ``Busy``; ``release`` or ``start`` it afterwards."""
        with self._lock:
            if self.open >= self.limit:
                raise Busy(f"the agent already relays {self.limit} streams; retry when some close")
            self.open += 1

    def release(self) -> None:
        with self._lock:
            self.open -= 1

    def start(self, client: socket.socket, upstream: socket.socket) -> None:
        """Hand a reserved relay's sockets to the loop, which closes them and releases the
        slot when both directions are done."""
        for sock in (client, upstream):
            sock.setblocking(False)
        with self._lock:
            self._arrivals.append(_Relay(client, upstream))
        self._wake()

    def stop(self) -> None:
        """End the loop and every relay (tests; the agent's process just exits)."""
        self._stopping = True
        self._wake()
        self._thread.join()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
            self._wake_write.send(b"\0")

    def _run(self) -> None:
        buffer = memoryview(bytearray(CHUNK))
        while not self._stopping:
            for key, events in self._selector.select():
                if key.data is None:
                    self._admit()
                else:
                    self._step(key.data, key.fileobj, events, buffer)  # type: ignore[arg-type]
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                self._close(key.data, reset=True)
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()

    def _admit(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_read.recv(4096)
        while True:
            with self._lock:
                if not self._arrivals:
                    return
                relay = self._arrivals.popleft()
            self._watch(relay)

    def _step(self, relay: _Relay, sock: socket.socket, events: int, buffer: memoryview) -> None:
        if not relay.interest:
            return  # closed by its other socket's event in the same round
        try:
            relay.ready(sock, events, buffer)
        except OSError as exc:  # a reset or a vanished peer: routine, one line
            log.debug("relay ended: %s", exc)
            self._close(relay, reset=True)
            return
        except Exception:
            log.exception("relay failed")
            self._close(relay, reset=True)
            return
        if relay.finished:
            self._close(relay, reset=False)
        else:
            self._watch(relay)

    def _watch(self, relay: _Relay) -> None:
        """Register what each socket now waits for."""
        for sock, current in relay.interest.items():
            wanted = relay.wanted(sock)
            if wanted == current:
                continue
            if not current:
                self._selector.register(sock, wanted, relay)
            elif not wanted:
                self._selector.unregister(sock)
            else:
                self._selector.modify(sock, wanted, relay)
            relay.interest[sock] = wanted

    def _close(self, relay: _Relay, reset: bool) -> None:
        for sock, current in relay.interest.items():
            if current:
                self._selector.unregister(sock)
            with contextlib.suppress(OSError):
                if reset:  # pass the failure on as a reset, not as a clean end
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_LINGER)
                sock.close()
        relay.interest = {}
        self.release()
