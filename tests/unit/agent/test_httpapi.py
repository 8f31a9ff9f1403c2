"""The agent's HTTP endpoints, served for real on an ephemeral port."""

import threading

import httpx
import pytest

from dev8.agent.httpapi import AgentHTTPServer


@pytest.fixture
def serve():
    servers = []

    def start(token="tok", health=None):
        server = AgentHTTPServer(
            0, token, lambda: health, lambda: {"ok": 1}, lambda: {"code_server_password": "pw"}
        )
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_health_is_open_and_says_why(serve):
    assert httpx.get(serve() + "/health").status_code == 200
    response = httpx.get(serve(health="sshd: down") + "/health")
    assert response.status_code == 503 and response.json()["reason"] == "sshd: down"


def test_status_and_credentials_need_the_token(serve):
    url = serve()
    assert httpx.get(url + "/status").status_code == 401
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer tok"}).json() == {"ok": 1}
    assert httpx.get(url + "/credentials", headers={"Authorization": "Bearer tok"}).json() == {
        "code_server_password": "pw"
    }
    assert httpx.get(url + "/nope").status_code == 404


def test_without_a_configured_token_nothing_private_is_served(serve):
    url = serve(token="")
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer x"}).status_code == 403
