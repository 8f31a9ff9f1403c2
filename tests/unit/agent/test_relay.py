"""The agent's relay, for real: the agent's HTTP server in-process on a free port, real
sockets on both sides (an echo server or a plain listener stands in for sshd or the IDE)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dev8.agent.activity import established_remote_connections
from dev8.agent.httpapi import AgentHTTPServer
from dev8.agent.relay import Relays, parse_port
from dev8.core.errors import InvalidInput

TOKEN = "relay-token"


@pytest.fixture
def agent() -> Iterator[Callable[..., int]]:
    """Starts an agent HTTP server; returns its port."""
    servers = []

    def start(token: str = TOKEN, limit: int = 512) -> int:
        server = AgentHTTPServer(0, token, lambda: None, lambda: {}, relays=Relays(limit))
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _listener() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0))


@pytest.fixture
def echo() -> Iterator[int]:
    """An echo server: sends back everything, then half-closes when the client did."""
    listener = _listener()

    def serve_one(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # a relay that was reset
            while data := conn.recv(1 << 16):
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def request(agent_port: int, target: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", agent_port), timeout=10)
    lines = [f"GET /relay/{target} HTTP/1.1", "Host: agent"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def upgrade_headers(token: str = TOKEN) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Connection": "Upgrade",
        "Upgrade": "dev8-relay",
    }


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The response head, and whatever bytes came after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def open_relay(agent_port: int, port: int) -> socket.socket:
    sock = request(agent_port, str(port), upgrade_headers())
    head, rest = read_head(sock)
    assert head == b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: dev8-relay"
    assert rest == b""
    return sock


def refusal(agent_port: int, target: str, headers: dict[str, str]) -> tuple[int, dict]:
    """The status and JSON body of a refused relay; the agent closes the connection."""
    with request(agent_port, target, headers) as sock:
        response = read_all(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_large_payload_comes_back_intact(agent, echo):
    payload = os.urandom(20 * 2**20)
    with open_relay(agent(), echo) as sock:
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        received = read_all(sock)
        sender.join()
    assert len(received) == len(payload)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()


def test_half_close_passes_on_and_the_rest_still_arrives(agent):
    """The upstream reads to EOF (which only the passed-on half-close gives it), then
    answers: a client that shut down its sending side still receives the answer."""
    listener = _listener()
    received = []

    def upstream() -> None:
        conn, _ = listener.accept()
        with conn:
            received.append(read_all(conn))
            conn.sendall(b"answer after your EOF:" + received[0])

    thread = threading.Thread(target=upstream, daemon=True)
    thread.start()
    agent_server = AgentHTTPServer(0, TOKEN, lambda: None, dict)
    threading.Thread(
        target=agent_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        with open_relay(agent_server.server_address[1], listener.getsockname()[1]) as sock:
            sock.sendall(b"question")
            sock.shutdown(socket.SHUT_WR)
            assert read_all(sock) == b"answer after your EOF:question"
        thread.join(10)
        assert received == [b"question"]
    finally:
        agent_server.shutdown()
        agent_server.server_close()
        listener.close()


def test_bytes_sent_with_the_request_are_not_lost(agent, echo):
    """A client may talk before it sees the 101: what the request reader buffered goes on."""
    sock = socket.create_connection(("127.0.0.1", agent()), timeout=10)
    head = f"GET /relay/{echo} HTTP/1.1\r\nAuthorization: Bearer {TOKEN}\r\n"
    with sock:
        sock.sendall(head.encode() + b"Upgrade: dev8-relay\r\n\r\nSSH-2.0-early\r\n")
        sock.shutdown(socket.SHUT_WR)
        _, rest = read_head(sock)
        assert rest + read_all(sock) == b"SSH-2.0-early\r\n"


def test_missing_or_wrong_token_is_401_and_no_token_configured_is_403(agent, echo):
    port = agent()
    headers = upgrade_headers()
    del headers["Authorization"]
    assert refusal(port, str(echo), headers)[0] == 401
    status, body = refusal(port, str(echo), upgrade_headers("wrong"))
    assert (status, body["error"]) == (401, "unauthorized")
    assert refusal(agent(token=""), str(echo), upgrade_headers(""))[0] == 403


@pytest.mark.parametrize("target", ["0", "65536", "x", "-1", "22a", "²", "8080/extra"])
def test_bad_port_is_400(agent, target):
    status, body = refusal(agent(), target, upgrade_headers())
    assert (status, body["error"]) == (400, "invalid_input")


def test_without_the_upgrade_header_is_400(agent, echo):
    headers = upgrade_headers()
    del headers["Upgrade"]
    status, body = refusal(agent(), str(echo), headers)
    assert (status, body["error"]) == (400, "invalid_input")
    assert "Upgrade: dev8-relay" in body["message"]
    status, _ = refusal(agent(), str(echo), {**upgrade_headers(), "Upgrade": "websocket"})
    assert status == 400


def test_nothing_listening_is_502():
    free = _listener()
    port = free.getsockname()[1]
    free.close()  # a port that was just free: nothing listens on it
    server = AgentHTTPServer(0, TOKEN, lambda: None, dict)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        status, body = refusal(server.server_address[1], str(port), upgrade_headers())
    finally:
        server.shutdown()
        server.server_close()
    assert (status, body) == (
        502,
        {"error": "unreachable", "message": f"nothing listens on port {port} in the workspace"},
    )


def test_relays_beyond_the_limit_are_503_until_one_closes(agent, echo):
    port = agent(limit=2)
    first, second = open_relay(port, echo), open_relay(port, echo)
    status, body = refusal(port, str(echo), upgrade_headers())
    assert (status, body["error"]) == (503, "busy")
    first.close()
    second.sendall(b"still here")
    assert second.recv(100) == b"still here"
    # The slot comes back once the agent saw the close (asynchronously): poll for it.
    deadline = time.monotonic() + 10
    while True:
        sock = request(port, str(echo), upgrade_headers())
        if read_head(sock)[0].startswith(b"HTTP/1.1 101"):
            break
        sock.close()
        assert time.monotonic() < deadline, "the closed relay's slot never came back"
    sock.close()
    second.close()


def test_a_client_reset_ends_the_relay_and_frees_the_slot(agent, echo, caplog):
    port = agent(limit=1)
    sock = open_relay(port, echo)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.sendall(b"x" * 100_000)
    sock.close()  # with linger 0: a reset
    deadline = time.monotonic() + 10
    while True:
        with request(port, str(echo), upgrade_headers()) as probe:
            if read_head(probe)[0].startswith(b"HTTP/1.1 101"):
                break
        assert time.monotonic() < deadline, "the reset relay's slot never came back"
    assert "Traceback" not in caplog.text


def test_relayed_connections_count_as_activity(agent):
    """They come from 127.0.0.2, so the activity sampler (which leaves out 127.0.0.1, the
    agent's probes) sees a user connected to that port."""
    listener = _listener()
    target = listener.getsockname()[1]
    assert established_remote_connections(target) == 0
    with open_relay(agent(), target):
        conn, (source, _) = listener.accept()
        with conn:
            assert source == "127.0.0.2"
            assert established_remote_connections(target) == 1
    listener.close()


def test_parse_port_accepts_only_tcp_ports():
    assert parse_port("1") == 1 and parse_port("65535") == 65535
    for text in ("", "0", "65536", " 22", "+22", "1e3", "٣"):
        with pytest.raises(InvalidInput):
            parse_port(text)
