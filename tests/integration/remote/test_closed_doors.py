"""The side doors are shut: from the laptop nothing of the workspace answers but through the
server, the workspace publishes only its agent (on the host's loopback), its IDE and sshd
listen on the container's loopback only, and the server's doors refuse whoever is not the
owner: anonymous gets the sign-in page (browser) or 401 (API, tunnel), another member 404."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import docker
import pytest

from dev8.client import Client
from tests.integration.remote.laptop import (
    Laptop,
    RemoteServer,
    up_from_laptop,
)

NAME = "laptop-doors"
MEMBER_PASSWORD = "member-password-for-tests"
# Run on the laptop: tries a TCP connection to each HOST:PORT argument; one word (or the
# error) for each.
CONNECT_PROBE = """
import json, socket, sys
found = {}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        found[target] = "open"
    except ConnectionRefusedError:
        found[target] = "refused"
    except OSError as exc:
        found[target] = f"{type(exc).__name__}: {exc}"
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def workspace(the_laptop: Laptop, server: RemoteServer) -> str:
    return up_from_laptop(the_laptop, server, NAME)


@pytest.fixture(scope="module")
def container(client: docker.DockerClient, server: RemoteServer, workspace: str):
    with server.admin() as admin:
        workspace_id = admin.workspaces.get(workspace).id
    return client.containers.get(f"dev8-{workspace_id}")


@pytest.fixture(scope="module")
def member(server: RemoteServer) -> Iterator[tuple[str, str]]:
    """Another member of the same server: (name, API token)."""
    name = f"{server.owner}-other"
    with server.admin() as admin:
        admin.users.create(name, MEMBER_PASSWORD)
    with Client(server.url) as anonymous:
        yield name, anonymous.login(name, MEMBER_PASSWORD)["token"]


def container_addresses(container) -> list[str]:
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"] or {}
    return [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]


def connect_from_laptop(the_laptop: Laptop, *targets: str) -> dict[str, str]:
    result = the_laptop.run("python3", "-c", CONNECT_PROBE, *targets, timeout=60)
    return json.loads(result.stdout)


def curl(the_laptop: Laptop, *args: str) -> tuple[int, str, str]:
    """(status, redirect target, body) of a request made with curl on the laptop."""
    out = the_laptop.run(
        "curl", "-s", "--max-time", "20", "-w", "\n%{http_code} %{redirect_url}", *args
    ).stdout.decode()
    body, _, last = out.rpartition("\n")
    status, _, location = last.partition(" ")
    return int(status), location, body


def websocket_headers() -> list[str]:
    return [
        "-H", "Connection: Upgrade",
        "-H", "Upgrade: websocket",
        "-H", "Sec-WebSocket-Version: 13",
        "-H", f"Sec-WebSocket-Key: {uuid.uuid4().hex[:22]}==",
    ]  # fmt: skip


# The workspace's own ports ---------------------------------------------------------------
def test_only_the_agent_is_published_and_on_the_hosts_loopback(container) -> None:
    bindings = container.attrs["HostConfig"]["PortBindings"] or {}
    assert set(bindings) == {"9000/tcp"}, bindings
    assert {binding["HostIp"] for binding in bindings["9000/tcp"]} == {"127.0.0.1"}


def test_ide_and_sshd_listen_on_the_containers_loopback_only(container) -> None:
    addresses = container_addresses(container)
    assert addresses, "the workspace container has no address"
    for address in addresses:
        # The agent answers on the container's address: the refusals below are the
        # services' own, not a route or a firewall in the way.
        socket.create_connection((address, 9000), timeout=5).close()
        for port in (8080, 2222):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((address, port), timeout=5)


def test_nothing_of_the_workspace_answers_from_the_laptop(
    the_laptop: Laptop, server: RemoteServer, container
) -> None:
    agent_port = container.attrs["HostConfig"]["PortBindings"]["9000/tcp"][0]["HostPort"]
    targets = [
        f"{the_laptop.host_address}:{agent_port}",  # published on the host's loopback only
        f"127.0.0.1:{agent_port}",  # the laptop's own loopback
        *(f"{ip}:{port}" for ip in container_addresses(container) for port in (9000, 8080, 2222)),
    ]
    found = connect_from_laptop(the_laptop, f"{server.address}:{server.port}", *targets)
    assert found.pop(f"{server.address}:{server.port}") == "open"  # the one door
    assert all(outcome != "open" for outcome in found.values()), found


# The server's doors ------------------------------------------------------------------------
def test_the_ide_without_a_session_redirects_to_the_sign_in_page(
    the_laptop: Laptop, server: RemoteServer, workspace: str
) -> None:
    status, location, _ = curl(the_laptop, f"{server.url}/@{server.owner}/{workspace}/")
    assert status in (302, 303, 307), status
    assert "/login" in location and "next=" in location, location


def test_the_tunnel_refuses_no_token_and_a_wrong_one(
    the_laptop: Laptop, server: RemoteServer, workspace: str
) -> None:
    url = f"{server.url}/api/v1/workspaces/{workspace}/tunnel/2222?owner={server.owner}"
    for credential in ([], ["-H", "Authorization: Bearer dev8_not-a-token"]):
        status, _, body = curl(the_laptop, *websocket_headers(), *credential, url)
        assert status == 401, (credential, status, body)
        assert json.loads(body)["error"] == "unauthorized"


def test_the_api_refuses_anonymous(the_laptop: Laptop, server: RemoteServer) -> None:
    status, _, _ = curl(the_laptop, f"{server.url}/api/v1/workspaces")
    assert status == 401


def test_another_member_gets_404_on_the_tunnel(
    the_laptop: Laptop, server: RemoteServer, workspace: str, member: tuple[str, str]
) -> None:
    _, token = member
    base = f"{server.url}/api/v1/workspaces/{workspace}/tunnel/2222"
    for url in (base, f"{base}?owner={server.owner}"):
        status, _, body = curl(
            the_laptop, *websocket_headers(), "-H", f"Authorization: Bearer {token}", url
        )
        assert status == 404, (url, status, body)


def test_another_members_session_gets_404_on_the_ide_and_the_api_ignores_the_cookie(
    the_laptop: Laptop, server: RemoteServer, workspace: str, member: tuple[str, str]
) -> None:
    name, _ = member
    jar = str(the_laptop.home / f"cookies-{name}.txt")
    status, _, body = curl(
        the_laptop,
        "-c", jar,
        "--data-urlencode", f"username={name}",
        "--data-urlencode", f"password={MEMBER_PASSWORD}",
        "--data-urlencode", "next=/",
        f"{server.url}/login",
    )  # fmt: skip
    assert status in (302, 303), (status, body)
    assert "dev8_session" in (the_laptop.home / f"cookies-{name}.txt").read_text()

    status, _, _ = curl(the_laptop, "-b", jar, f"{server.url}/@{server.owner}/{workspace}/")
    assert status == 404
    status, _, _ = curl(the_laptop, "-b", jar, f"{server.url}/api/v1/workspaces")
    assert status == 401  # Bearer only: a cookie would open the API to cross-site requests
