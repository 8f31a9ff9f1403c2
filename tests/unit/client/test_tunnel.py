"""The SDK's tunnels against a stand-in for the server's tunnel endpoint (protocols section 4),
a real WebSocket server from the ``websockets`` library in a thread: it refuses an upgrade
the way the server does (401/404/409 with a JSON body), echoes bytes, passes a half-close
back as an empty message and closes with 1000, or fails with 1011 and a reason."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http import HTTPStatus

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from dev8.client import Client
from dev8.client.tunnel import MAX_MESSAGE, tunnel_url
from dev8.core.errors import Conflict, NotFound, Unauthorized, WorkspaceUnreachable

TOKEN = "dev8_good"
REFUSALS = {
    "gone": (404, "not_found", "no workspace gone"),
    "stopped": (409, "conflict", "workspace stopped is stopped; start it"),
}


def refusal(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": code, "message": message}).encode()
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
    return Response(status, HTTPStatus(status).phrase, headers, body)


def check(connection: ServerConnection, request: Request) -> Response | None:
    """Refuse before the upgrade, as the server's endpoint does."""
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return refusal(401, "unauthorized", "missing or unknown API token")
    name = request.path.split("/")[4]
    if name in REFUSALS:
        return refusal(*REFUSALS[name])
    return None


def echo(connection: ServerConnection) -> None:
    """Port 7: echo, and answer a half-close with one; port 1: the upstream fails."""
    connection.request_paths.append(connection.request.path)  # type: ignore[attr-defined]
    if connection.request.path.endswith("/tunnel/1"):
        connection.close(1011, "nothing listens on port 1 in the workspace")
        return
    for message in connection:
        connection.send(message)
        if not message:
            break
    connection.close(1000)


@pytest.fixture
def server() -> Iterator[tuple[Server, list[str]]]:
    paths: list[str] = []

    def handler(connection: ServerConnection) -> None:
        connection.request_paths = paths  # type: ignore[attr-defined]
        echo(connection)

    with serve(handler, "127.0.0.1", 0, process_request=check, max_size=MAX_MESSAGE) as found:
        thread = threading.Thread(target=found.serve_forever, daemon=True)
        thread.start()
        yield found, paths
        found.shutdown()
    thread.join(5)


def url_of(server: Server) -> str:
    host, port = server.socket.getsockname()[:2]
    return f"http://{host}:{port}"


def test_the_url_maps_the_scheme_and_keeps_a_prefix():
    assert tunnel_url("http://h:8700", "web", 22) == "ws://h:8700/api/v1/workspaces/web/tunnel/22"
    assert (
        tunnel_url("https://h/dev8/", "web", 8080, owner="bob")
        == "wss://h/dev8/api/v1/workspaces/web/tunnel/8080?owner=bob"
    )


def test_bytes_go_both_ways_with_a_half_close(server):
    found, paths = server
    payload = bytes(range(256)) * (3 * MAX_MESSAGE // 256 + 7)  # more than one message
    with Client(url_of(found), token=TOKEN) as client:
        tunnel = client.open_tunnel("web", 7, owner="alice")
        sender = threading.Thread(target=lambda: (tunnel.write(payload), tunnel.close_write()))
        sender.start()
        received = bytearray()
        while chunk := tunnel.read():
            assert len(chunk) <= MAX_MESSAGE
            received += chunk
        sender.join(10)
        tunnel.close()
    assert bytes(received) == payload
    assert tunnel.read() == b""  # stays at the end
    assert paths == ["/api/v1/workspaces/web/tunnel/7?owner=alice"]


@pytest.mark.parametrize(
    "token,name,error,message",
    [
        ("dev8_bad", "web", Unauthorized, "missing or unknown API token"),
        (TOKEN, "gone", NotFound, "no workspace gone"),
        (TOKEN, "stopped", Conflict, "workspace stopped is stopped; start it"),
    ],
)
def test_a_refused_upgrade_is_the_error_the_server_names(server, token, name, error, message):
    with Client(url_of(server[0]), token=token) as client, pytest.raises(error) as raised:
        client.open_tunnel(name, 7)
    assert raised.value.message == message


def test_a_failing_upstream_is_unreachable_with_the_servers_reason(server):
    with Client(url_of(server[0]), token=TOKEN) as client:
        tunnel = client.open_tunnel("web", 1)
        with pytest.raises(WorkspaceUnreachable, match=r"^nothing listens on port 1 in"):
            tunnel.read()
        tunnel.close()


def test_the_model_opens_its_own_workspaces_tunnel(server):
    found, paths = server
    with Client(url_of(found), token=TOKEN) as client:
        from dev8.client.models import Workspace

        workspace = Workspace(client, {"name": "web", "owner": "alice"})
        with workspace.open_tunnel(7) as tunnel:
            tunnel.write(b"ping")
            assert tunnel.read() == b"ping"
    assert paths == ["/api/v1/workspaces/web/tunnel/7?owner=alice"]
