"""Relaying bytes: this process's stdin/stdout to a stream (the ProxyCommand behind
`ssh dev8.NAME`), a local connection to a stream (`dev8 port-forward`), and a TCP socket
seen as a stream.

Each direction is one thread doing big reads and writing at once (nothing waits in a
buffer); an end of data is passed on as a half-close, so that protocols which finish one
direction first (an HTTP/1.0 request, `ssh ... < file`) work.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import threading
from collections.abc import Callable

from dev8.cli.backends import ByteStream
from dev8.core.errors import Dev8Error
from dev8.core.heap import keep_freed_buffers

CHUNK = 1024 * 1024  # the tunnel's largest message
PIPE_SIZE = 1024 * 1024  # /proc/sys/fs/pipe-max-size's default
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux; Python 3.10 has no name
STDIN, STDOUT = 0, 1


class SocketStream:
    """A connected TCP socket as a ``ByteStream``; ``pending`` is what was read past a
    handshake, given first."""

    def __init__(self, sock: socket.socket, pending: bytes = b"") -> None:
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # interactive SSH
        self.sock = sock
        self._pending = pending

    def read(self) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        try:
            return self.sock.recv(CHUNK)
        except ConnectionResetError:
            return b""

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close_write(self) -> None:
        with contextlib.suppress(OSError):  # already closed by the other side
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
        self.sock.close()


def connect_tcp(host: str, port: int, timeout: float = 10.0) -> SocketStream:
    return SocketStream(socket.create_connection((host, port), timeout=timeout))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _widen_pipes(*fds: int) -> None:
    """ssh talks to its ProxyCommand through pipes of 64 KiB; 1 MiB ones let each read
    carry more, so fewer, larger messages cross the server (the CPU a byte costs is what
    bounds a relayed scp)."""
    for fd in fds:
        with contextlib.suppress(OSError, ValueError):  # not a pipe, or a lower limit
            fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)


def relay_stdio(stream: ByteStream) -> None:
    """Copy stdin to ``stream`` and ``stream`` to stdout until ``stream`` ends (ssh then
    sees the end of the connection); stdin's end is passed on as a half-close."""
    keep_freed_buffers()  # a buffer per message: reuse, not fresh pages (see dev8.core.heap)
    _widen_pipes(STDIN, STDOUT)

    def upstream() -> None:
        try:
            while data := os.read(STDIN, CHUNK):
                stream.write(data)
            stream.close_write()
        except (OSError, Dev8Error):
            stream.close()  # the main thread's read ends, and with it this process

    threading.Thread(target=upstream, daemon=True).start()
    try:
        while data := stream.read():
            _write_all(STDOUT, data)
    finally:
        stream.close()
        sys.stdout.flush()


def pump(connection: socket.socket, stream: ByteStream, on_error: Callable[[str], None]) -> None:
    """Relay between a local ``connection`` and ``stream`` both ways until both directions
    are done; closes both. The first failure of ``stream`` (the workspace's side) is told to
    ``on_error``; a local peer that goes away is normal and told to no one."""
    keep_freed_buffers()  # as relay_stdio
    local = SocketStream(connection)
    failed = threading.Event()

    def copy(source: ByteStream, target: ByteStream) -> None:
        try:
            while data := source.read():
                target.write(data)
            target.close_write()
        except (OSError, Dev8Error) as exc:
            if isinstance(exc, Dev8Error) and not failed.is_set():
                on_error(exc.message)
            failed.set()
            local.close()  # unblocks the other direction
            stream.close()

    other = threading.Thread(target=copy, args=(local, stream), daemon=True)
    other.start()
    copy(stream, local)
    other.join()
    local.close()
    stream.close()
