"""Raw byte streams to and from a container's stdin/stdout over the engine's attach socket.

docker-py's ``attach`` reads through ``http.client`` a frame at a time; for archives of
gigabytes that costs more than the compression. Here the hijacked socket is read directly in
large chunks and the 8-byte frame headers of a non-TTY container are parsed by hand.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterable
from contextlib import suppress
from typing import Any

STDOUT, STDERR = 1, 2
_HEADER = struct.Struct(">BxxxL")
_CHUNK = 1 << 20

Sink = Callable[[bytes], None]


def raw_socket(attached: Any) -> socket.socket:
    """The OS socket under what ``APIClient.attach_socket`` returns (a SocketIO on Unix
    sockets, the socket itself on TCP)."""
    sock = getattr(attached, "_sock", attached)
    sock.settimeout(None)
    return sock


class Demuxer:
    """Splits the multiplexed attach stream into stdout and stderr, across recv boundaries."""

    def __init__(self, stdout: Sink, stderr: Sink) -> None:
        self.sinks = {STDOUT: stdout, STDERR: stderr}
        self._header = b""
        self._stream = 0
        self._left = 0

    def feed(self, data: memoryview) -> None:
        while data:
            if self._left:
                take = data[: self._left]
                self.sinks.get(self._stream, _discard)(bytes(take))
                self._left -= len(take)
                data = data[len(take) :]
                continue
            need = _HEADER.size - len(self._header)
            self._header += bytes(data[:need])
            data = data[need:]
            if len(self._header) == _HEADER.size:
                self._stream, self._left = _HEADER.unpack(self._header)
                self._header = b""


def _discard(_data: bytes) -> None:
    pass


def pump(
    sock: socket.socket,
    stdout: Sink,
    stderr: Sink,
    stdin: Iterable[bytes] | None = None,
) -> BaseException | None:
    """Feed ``stdin`` (then half-close it) while demultiplexing output until the container
    closes the stream. Returns the exception that stopped the stdin writer, if any."""
    writer_error: list[BaseException] = []
    writer = None
    if stdin is not None:
        writer = threading.Thread(
            target=_write_all, args=(sock, stdin, writer_error), name="stdin", daemon=True
        )
        writer.start()
    demuxer = Demuxer(stdout, stderr)
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        received = sock.recv_into(buffer)
        if not received:
            break
        demuxer.feed(view[:received])
    if writer is not None:
        writer.join()
    return writer_error[0] if writer_error else None


def _write_all(sock: socket.socket, chunks: Iterable[bytes], errors: list[BaseException]) -> None:
    try:
        for chunk in chunks:
            sock.sendall(chunk)
    except BaseException as exc:
        errors.append(exc)
    finally:
        # EOF on the container's stdin (the engine closes it: the container has StdinOnce).
        with suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
