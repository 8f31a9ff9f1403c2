"""Stand-ins for what runs inside a workspace, for tests of the server's relay without an
engine: ``StandInAgent`` replaces the workspace's agent (it answers the ``/relay/{port}``
upgrade of the agent protocol and pipes bytes to a local port), ``EchoHttp`` a web
application (it answers every request with what it received, as JSON) and ``EchoWebSocket``
a WebSocket server (it sends every message back)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.sync.server import ServerConnection, serve

TOKEN = "stand-in-agent-token"
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n"
)


class StandInAgent:
    """Answers ``GET /relay/{port}`` with ``Authorization: Bearer TOKEN`` by connecting to
    127.0.0.1:``ports[port]`` and relaying bytes both ways, half-closes passed on."""

    def __init__(self, ports: dict[int, int]) -> None:
        self.ports = ports
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(1)  # byte by byte: nothing past the head may be taken
            if not data:
                client.close()
                return
            head += data
        lines = head.decode("latin-1").split("\r\n")
        port = int(lines[0].split()[1].rsplit("/", 1)[1])
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        if headers.get("authorization") != f"Bearer {TOKEN}" or port not in self.ports:
            client.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            client.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.ports[port]))
        client.sendall(SWITCHING)
        done = threading.Barrier(2, action=lambda: (client.close(), upstream.close()))
        threading.Thread(target=_pipe, args=(client, upstream, done), daemon=True).start()
        _pipe(upstream, client, done)


def _pipe(source: socket.socket, target: socket.socket, done: threading.Barrier) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        done.wait()


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        answer = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *_args: Any) -> None:
        pass


class EchoHttp:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class EchoWebSocket:
    def __init__(self) -> None:
        self.server = serve(self._echo, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _echo(self, connection: ServerConnection) -> None:
        for message in connection:
            connection.send(message)

    def close(self) -> None:
        self.server.shutdown()
