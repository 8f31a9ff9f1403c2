"""The agent's HTTP endpoints on port 9000.

``GET /health`` is open: 200 when sshd and code-server are healthy, 503 with the reason.
``GET /status`` needs ``Authorization: Bearer <DEV8_AGENT_TOKEN>``, as does ``PUT /ssh-keys``
(the owner's public keys, authorized_keys text: they change after the container was created)
and ``POST /sync`` (on ACI: sync the home and /workspace to their shares now, answered when
done, so a stop can wait for it: ``dev8.agent.sync``).
``GET /relay/{port}`` with ``Upgrade: dev8-relay`` (and the token) becomes a raw TCP stream to
127.0.0.1:{port} in the workspace (``relay``): the dev8 server's one way in.

Whoever reaches the port may be hostile, so a request is bounded twice: its line, headers and
body must arrive within ``REQUEST_DEADLINE_S`` in all (one deadline, not a timeout per read
that a client trickling a byte at a time would renew forever), and at most ``MAX_HANDLERS``
connections hold a thread at once; one more is answered 503 at once, without a thread. A relay
leaves its thread as soon as it is established: ``Relays`` bounds those on its own.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import math
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dev8.agent.relay import Relays, connect_local, parse_port, prepare_client
from dev8.core.errors import Busy, Dev8Error, InvalidInput

log = logging.getLogger("dev8.agent")
MAX_KEYS_BODY = 64 * 1024  # the server's own limit on a user's keys
REQUEST_DEADLINE_S = 10.0  # the dev8 server's own agent client gives up after 5 s
# A few KB resident each; the server asks one /status per pass and opens relays in bursts (an
# IDE page load), each of which leaves its thread within milliseconds.
MAX_HANDLERS = 64
RELAY_PROTOCOL = "dev8-relay"
_SWITCHING = (
    f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {RELAY_PROTOCOL}\r\n\r\n"
).encode()


def _json_response(code: int, reason: str, body: dict) -> bytes:
    """A whole response with a JSON body that closes the connection."""
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


class _DeadlineReader(io.RawIOBase):
    """The connection's incoming bytes, every read ending by one deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline = math.inf

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.sock.settimeout(remaining)
        return self.sock.recv_into(buffer)


class AgentHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # The dev8 server may open many relays at once (an IDE page load): a deeper accept queue
    # than socketserver's 5 keeps their SYNs from being dropped and retried a second later.
    request_queue_size = 128

    def __init__(
        self,
        port: int,
        token: str,
        health: Callable[[], str | None],
        status: Callable[[], dict],
        relays: Relays | None = None,
        ssh_keys: Callable[[str], int] | None = None,
        sync_now: Callable[[], dict] | None = None,
        *,
        request_deadline: float = REQUEST_DEADLINE_S,
        max_handlers: int = MAX_HANDLERS,
    ) -> None:
        super().__init__(("0.0.0.0", port), _Handler)
        self.token = token
        self.health = health
        self.status = status
        self.relays = relays or Relays()
        self.ssh_keys = ssh_keys  # authorized_keys text -> how many valid keys it holds
        self.sync_now = sync_now
        self.request_deadline = request_deadline
        self.max_handlers = max_handlers
        self._handlers = threading.BoundedSemaphore(max_handlers)
        busy = Busy(f"the agent is answering {max_handlers} connections; retry in a moment")
        body = {"error": busy.code, "message": busy.message}
        self._busy = _json_response(busy.http_status, "Service Unavailable", body)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        """A thread for the connection if one of ``max_handlers`` is free, else a 503 sent
        without waiting (the client may not read it) and the connection closed."""
        if not self._handlers.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.send(self._busy, socket.MSG_DONTWAIT)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._handlers.release()  # its thread never started
            raise

    def process_request_thread(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._handlers.release()

    def server_close(self) -> None:
        super().server_close()
        self.relays.stop()

    def handle_error(self, request: object, client_address: object) -> None:
        """A peer that resets, vanishes or misses the deadline is routine here: one line, no
        traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log.debug("connection from %s ended: %s", client_address, error)
        else:
            log.exception("request from %s failed", client_address)


class _Handler(BaseHTTPRequestHandler):
    server: AgentHTTPServer
    server_version = "dev8-agent"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # socketserver's reader, replaced by one that keeps the deadline
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # Each request (and, on a kept-alive connection, the wait for it) has the deadline.
        self._reader.deadline = time.monotonic() + self.server.request_deadline
        super().handle_one_request()

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/health":
            reason = self.server.health()
            if reason is None:
                self._send(200, {"status": "healthy"})
            else:
                self._send(503, {"status": "unhealthy", "reason": reason})
        elif path == "/status":
            if self._authorized():
                self._send(200, self.server.status())
        elif path.startswith("/relay/"):
            self.close_connection = True
            if self._authorized():
                self._relay(path.removeprefix("/relay/"))
        else:
            self._send(404, {"error": "not_found", "message": f"no endpoint {path}"})

    def do_PUT(self) -> None:
        self.close_connection = True  # a refused request's body is never read
        path = self.path.split("?", 1)[0]
        if path != "/ssh-keys" or self.server.ssh_keys is None:
            self._send(404, {"error": "not_found", "message": f"no endpoint PUT {path}"})
        elif self._authorized():
            length = self.headers.get("Content-Length", "")
            if length.isdigit() and int(length) <= MAX_KEYS_BODY:
                text = self.rfile.read(int(length)).decode("utf-8", errors="replace")
                self._send(200, {"keys": self.server.ssh_keys(text)})
            else:
                message = f"send the keys with a Content-Length of at most {MAX_KEYS_BODY} bytes"
                self._send(413, {"error": "invalid_input", "message": message})

    def do_POST(self) -> None:
        self.close_connection = True
        path = self.path.split("?", 1)[0]
        if path != "/sync" or self.server.sync_now is None:
            self._send(404, {"error": "not_found", "message": f"no endpoint POST {path}"})
        elif self._authorized():
            self._send(200, self.server.sync_now())

    def _authorized(self) -> bool:
        expected = self.server.token
        given = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not expected:
            self._send(403, {"error": "forbidden", "message": "the agent has no token configured"})
            return False
        if not hmac.compare_digest(given.encode(), expected.encode()):
            self._send(401, {"error": "unauthorized", "message": "missing or wrong agent token"})
            return False
        return True

    def _relay(self, port_text: str) -> None:
        relays = self.server.relays
        try:
            port = parse_port(port_text)
            if self.headers.get("Upgrade", "").strip().lower() != RELAY_PROTOCOL:
                raise InvalidInput(f"a relay needs the header 'Upgrade: {RELAY_PROTOCOL}'")
            relays.reserve()
        except Dev8Error as exc:
            self._refuse(exc)
            return
        try:
            upstream = connect_local(port)
        except Dev8Error as exc:
            relays.release()
            self._refuse(exc)
            return
        try:
            prepare_client(self.connection)
            self.connection.settimeout(self.server.request_deadline)
            self.connection.sendall(_SWITCHING)
            upstream.sendall(self._read_ahead())
        except OSError as exc:  # either side went away before the relay began
            log.debug("relay to port %d ended early: %s", port, exc)
            upstream.close()
            relays.release()
            return
        # The relay loop owns the connection from here: the server must not close it.
        relays.start(socket.socket(fileno=self.connection.detach()), upstream)

    def _refuse(self, error: Dev8Error) -> None:
        # The protocol's 400 for a bad request, where the REST API says 422.
        status = 400 if isinstance(error, InvalidInput) else error.http_status
        self._send(status, {"error": error.code, "message": error.message})

    def _read_ahead(self) -> bytes:
        """What the client sent after its request that the request reader already buffered
        (a client may start talking before it sees the 101). What is still in the socket
        stays there for the relay."""
        self._reader.deadline = -math.inf  # (peek reads the socket only when nothing is buffered)
        try:
            return self.rfile.peek()  # type: ignore[attr-defined]
        except TimeoutError:
            return b""

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.connection.settimeout(self.server.request_deadline)  # a reader as slow as a writer
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Requests are not logged: health polls would drown everything else."""
