"""Issue 16, item 9: whoever reaches an agent's port cannot hold its threads.

Before: 300 half-sent requests held 300 threads of the agent's HTTP server, indefinitely.
Now a request's line, headers and body must arrive within one deadline, and at most a fixed
number of connections hold a thread; one more is refused at once. The agent's real HTTP
server runs in this process, with a deadline of 1 s and 8 threads (the production values,
10 s and 64, only take longer to show the same), so its handler threads can be counted.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from dev8.agent.httpapi import AgentHTTPServer

TOKEN = "tok"
DEADLINE_S = 1.0
HANDLERS = 8
HALF_REQUEST = b"GET /status HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer tok\r\n"


@pytest.fixture
def agent() -> Iterator[int]:
    server = AgentHTTPServer(
        0,
        TOKEN,
        lambda: None,
        lambda: {"ok": 1},
        ssh_keys=lambda text: 0,
        request_deadline=DEADLINE_S,
        max_handlers=HANDLERS,
    )
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def handler_threads() -> int:
    return sum(t.name.endswith("(process_request_thread)") for t in threading.enumerate())


def wait_for(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the agent never did it"
        time.sleep(0.05)


def closed_by_the_agent(sock: socket.socket) -> bool:
    """Whether the agent ended the connection (an answer then EOF, or a reset)."""
    sock.setblocking(False)
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def connect(port: int, first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    if first:
        sock.sendall(first)
    return sock


def test_half_sent_requests_hold_a_bounded_number_of_threads_and_only_until_the_deadline(agent):
    attackers = [connect(agent, HALF_REQUEST) for _ in range(300)]
    try:
        wait_for(lambda: handler_threads() == HANDLERS)  # every slot taken...
        assert handler_threads() == HANDLERS  # ...and not one more (was: 300)
        # The rest were refused at once, and the held ones end at the deadline.
        wait_for(lambda: all(closed_by_the_agent(sock) for sock in attackers))
        wait_for(lambda: handler_threads() == 0)
        url = f"http://127.0.0.1:{agent}"
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.get(f"{url}/status", headers={"Authorization": "Bearer tok"}).json() == {
            "ok": 1
        }
    finally:
        for sock in attackers:
            sock.close()


def test_one_connection_too_many_is_answered_503_at_once(agent):
    held = [connect(agent, HALF_REQUEST) for _ in range(HANDLERS)]
    try:
        wait_for(lambda: handler_threads() == HANDLERS)
        with connect(agent) as extra:
            extra.settimeout(5)
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 ") and b'"error": "busy"' in answer
    finally:
        for sock in held:
            sock.close()


def test_a_request_trickled_a_byte_at_a_time_is_cut_at_one_deadline(agent):
    request = HALF_REQUEST + b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
    sent = 0
    # (An OSError is the agent's reset ending the trickle.)
    with connect(agent) as sock, contextlib.suppress(OSError):
        while sent < len(request) and not closed_by_the_agent(sock):
            sock.setblocking(True)
            sock.sendall(request[sent : sent + 1])
            sent += 1
            time.sleep(0.05)  # the trickle itself: a byte per 50 ms, 12 s in all
    # A timeout per read would have let it go on to the end; one deadline stopped it.
    assert sent < len(request)
    wait_for(lambda: handler_threads() == 0)


def test_a_body_that_never_comes_is_cut_at_the_deadline(agent):
    head = (
        b"PUT /ssh-keys HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer tok\r\n"
        b"Content-Length: 1000\r\n\r\nssh-ed25519 "
    )
    with connect(agent, head) as sock:
        wait_for(lambda: closed_by_the_agent(sock))
    wait_for(lambda: handler_threads() == 0)


def test_an_established_relay_outlives_the_request_deadline(agent):
    with socket.create_server(("127.0.0.1", 0)) as service:
        port = service.getsockname()[1]
        upgrade = (
            f"GET /relay/{port} HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Connection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n"
        ).encode()
        with connect(agent, upgrade) as client:
            client.settimeout(5)
            assert client.recv(4096).startswith(b"HTTP/1.1 101 ")
            inside, _ = service.accept()
            with inside:
                # A half-sent request made now ends at the deadline: then the relay is past it.
                with connect(agent, HALF_REQUEST) as clock:
                    wait_for(lambda: closed_by_the_agent(clock))
                client.sendall(b"still there?")
                inside.settimeout(5)
                assert inside.recv(100) == b"still there?"
                inside.sendall(b"yes")
                assert client.recv(100) == b"yes"
