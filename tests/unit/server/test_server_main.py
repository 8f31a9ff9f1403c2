"""How `dev8 server` runs uvicorn (``dev8.server.main.transport_options``), against a real
uvicorn on loopback with a minimal ASGI app."""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from dev8.server import main
from dev8.server.main import transport_options


async def _answer_ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server_port() -> Iterator[int]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_answer_ok, log_level="warning", lifespan="off", **transport_options())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield listener.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    listener.close()


def test_a_request_head_without_end_is_cut_off(server_port: int) -> None:
    """A client sending headers forever is refused after a bounded amount, not buffered."""
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        with pytest.raises(OSError):  # reset (or a broken pipe) once the server gives up
            for _ in range(64 * 1024):  # 64 MiB at most: far past any kernel buffer
                client.sendall(filler)


def test_a_plain_request_is_answered(server_port: int) -> None:
    with socket.create_connection(("127.0.0.1", server_port), timeout=10) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.recv(100).startswith(b"HTTP/1.1 200")


def test_uvloop_where_installed_else_asyncio(monkeypatch: pytest.MonkeyPatch) -> None:
    installed = importlib.util.find_spec("uvloop") is not None
    assert transport_options()["loop"] == ("uvloop" if installed else "asyncio")
    monkeypatch.setattr(main.importlib.util, "find_spec", lambda name: None)
    assert transport_options()["loop"] == "asyncio"


def test_relayed_websockets_are_not_deflated() -> None:
    assert transport_options()["ws_per_message_deflate"] is False
