"""The agent's HTTP endpoints, served for real on an ephemeral port."""

import threading

import httpx
import pytest

from dev8.agent.httpapi import AgentHTTPServer


@pytest.fixture
def serve():
    servers = []

    def start(token="tok", health=None, ssh_keys=None):
        server = AgentHTTPServer(0, token, lambda: health, lambda: {"ok": 1}, ssh_keys=ssh_keys)
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


def test_status_needs_the_token_and_credentials_are_not_served(serve):
    url = serve()
    assert httpx.get(url + "/status").status_code == 401
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer tok"}).json() == {"ok": 1}
    assert (
        httpx.get(url + "/credentials", headers={"Authorization": "Bearer tok"}).status_code == 404
    )
    assert httpx.get(url + "/nope").status_code == 404


def test_without_a_configured_token_nothing_private_is_served(serve):
    url = serve(token="")
    assert httpx.get(url + "/status", headers={"Authorization": "Bearer x"}).status_code == 403


def test_ssh_keys_are_replaced_with_the_token_only(serve):
    taken: list[str] = []
    url = serve(ssh_keys=lambda text: taken.append(text) or len(text.splitlines()))
    keys = (
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA a@b\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB c@d\n"
    )
    assert httpx.put(url + "/ssh-keys", content=keys).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.put(url + "/ssh-keys", content=keys, headers=wrong).status_code == 401
    assert taken == []
    answer = httpx.put(url + "/ssh-keys", content=keys, headers={"Authorization": "Bearer tok"})
    assert answer.status_code == 200 and answer.json() == {"keys": 2}
    assert taken == [keys]


def test_ssh_keys_beyond_the_limit_are_refused_unread(serve):
    taken: list[str] = []
    url = serve(ssh_keys=lambda text: taken.append(text) or 0)
    answer = httpx.put(
        url + "/ssh-keys", content=b"x" * (64 * 1024 + 1), headers={"Authorization": "Bearer tok"}
    )
    assert answer.status_code == 413 and answer.json()["error"] == "invalid_input"
    assert "Content-Length" in answer.json()["message"] and taken == []


def test_an_agent_without_a_keys_handler_has_no_such_endpoint(serve):
    answer = httpx.put(serve() + "/ssh-keys", content=b"", headers={"Authorization": "Bearer tok"})
    assert answer.status_code == 404
