"""A stand-in for a workspace agent that a member replaced on purpose: a member is root in
their workspace, so the server must survive whatever its agent's port answers. Plain
sockets, one thread per connection, so that a test picks every byte and its pace."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

Behaviour = Callable[[socket.socket, "HostileAgent"], None]
CHUNK = 64 * 1024


class HostileAgent:
    """Listens on loopback; every request (any path) gets ``behaviour``'s answer. Counts
    requests and the bytes it managed to send."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.sent = 0
        self.stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def close(self) -> None:
        self.stopping.set()
        self._listener.close()

    def __enter__(self) -> HostileAgent:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def count_sent(self, size: int) -> None:
        with self._lock:
            self.sent += size

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                data = connection.recv(4096)
                if not data:
                    return
                request += data
            with self._lock:
                self.requests += 1
            with contextlib.suppress(OSError):  # the client gave up: what these tests want
                self.behaviour(connection, self)


def head(status: int = 200, length: int | None = None) -> bytes:
    extra = f"Content-Length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.0 {status} X\r\nContent-Type: application/json\r\n{extra}\r\n".encode()


def answers(body: bytes, status: int = 200) -> Behaviour:
    """A whole, quick answer with ``body`` (raw: it need not be valid JSON)."""

    def behaviour(connection: socket.socket, agent: HostileAgent) -> None:
        connection.sendall(head(status, len(body)) + body)
        agent.count_sent(len(body))

    return behaviour


def streams(total: int) -> Behaviour:
    """A ``total``-byte body made as it is sent (never held): a JSON list of zeros."""

    def chunks() -> Iterator[bytes]:
        yield b"["
        left = total - 2
        while left > 0:
            size = min(CHUNK, left)
            yield b"0," * (size // 2) + b"0" * (size % 2)
            left -= size
        yield b"]"

    def behaviour(connection: socket.socket, agent: HostileAgent) -> None:
        connection.sendall(head(200, total))
        for chunk in chunks():
            if agent.stopping.is_set():
                return
            connection.sendall(chunk)
            agent.count_sent(len(chunk))

    return behaviour


def trickles(every_s: float, body: bytes = b'{"health": null}' * 64) -> Behaviour:
    """The whole reply, status line included, one byte every ``every_s``: each byte comes
    well within any per-read timeout, the reply takes minutes."""

    def behaviour(connection: socket.socket, agent: HostileAgent) -> None:
        for byte in head(200, len(body)) + body:
            connection.sendall(bytes([byte]))
            agent.count_sent(1)
            if agent.stopping.wait(every_s):
                return

    return behaviour
