"""The agent's relay and loopback-only mode in a real workspace container on the real engine:
the IDE and sshd answer through the agent's published port only, never on the container's
own address."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from dev8.core.environment import LOOPBACK_ONLY
from dev8.core.naming import container_name, new_workspace_id
from dev8.core.resources import Resources
from dev8.providers.base import WorkspaceSpec
from dev8.providers.docker.provider import DockerProvider
from tests.integration.helpers import SSH_OPTIONS, wait_healthy
from tests.integration.owned import OWNER

TOKEN = "agent-token-for-relay-tests"
RELAYS_FOR_MEMORY = 100
# An OpenSSH ProxyCommand that opens a relay (argv: agent port, token) and copies stdio both ways.
PROXY_COMMAND = """
import os, socket, sys, threading
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(f"GET /relay/2222 HTTP/1.1\\r\\nAuthorization: Bearer {sys.argv[2]}\\r\\n"
             "Upgrade: dev8-relay\\r\\n\\r\\n".encode())
head = b""
while not head.endswith(b"\\r\\n\\r\\n"):
    head += sock.recv(1)
def upward():
    while data := os.read(0, 1 << 16):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=upward, daemon=True).start()
while data := sock.recv(1 << 16):
    os.write(1, data)
"""
AGENT_RSS_LIMIT_KB = 30 * 1024


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("relay-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def provider(client: docker.DockerClient) -> DockerProvider:
    return DockerProvider(client)


@pytest.fixture(scope="module")
def relayed(provider: DockerProvider, workspace_image: str, key: Path) -> Iterator[WorkspaceSpec]:
    """A loopback-only workspace that publishes only its agent, as server mode runs it
    (one for the module: the tests only read from it)."""
    spec = WorkspaceSpec(
        workspace_id=new_workspace_id(),
        name="relaytest",
        owner=OWNER,
        image=workspace_image,
        resources=Resources(2, 4096),
        env={
            "DEV8_AGENT_TOKEN": TOKEN,
            "SSH_PUBLIC_KEY": key.with_suffix(".pub").read_text(),
            LOOPBACK_ONLY: "1",
        },
        published=("agent",),
    )
    provider.create(spec)
    try:
        wait_healthy(provider.start(spec.workspace_id).ports["agent"])
        yield spec
    finally:
        provider.remove(spec.workspace_id)
        provider.remove_volumes(spec.workspace_id)


def open_relay(agent_port: int, port: int) -> socket.socket:
    """A stream to ``port`` in the workspace, after the agent's 101."""
    sock = socket.create_connection(("127.0.0.1", agent_port), timeout=10)
    sock.sendall(
        f"GET /relay/{port} HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {TOKEN}\r\n"
        "Connection: Upgrade\r\nUpgrade: dev8-relay\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)  # byte by byte: nothing after the head is taken from the stream
        assert byte, f"the agent closed the connection after {head!r}"
        head += byte
    assert head.startswith(b"HTTP/1.1 101 "), head
    return sock


def healthz(sock: socket.socket, close: bool) -> bytes:
    connection = "close" if close else "keep-alive"
    sock.sendall(
        f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {connection}\r\n\r\n".encode()
    )
    return sock.recv(4096)


def container_address(client: docker.DockerClient, spec: WorkspaceSpec) -> str:
    networks = client.containers.get(container_name(spec.workspace_id)).attrs["NetworkSettings"]
    addresses = [n["IPAddress"] for n in networks["Networks"].values() if n.get("IPAddress")]
    assert addresses, networks
    return addresses[0]


def agent_rss_kb(provider: DockerProvider, spec: WorkspaceSpec, pid: int) -> int:
    result = provider.exec(spec.workspace_id, ["cat", f"/proc/{pid}/status"], user="root")
    line = next(x for x in result.output.decode().splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


def test_the_ide_and_sshd_answer_through_the_relay_and_nowhere_else(client, provider, relayed):
    runtime = provider.status(relayed.workspace_id)
    assert set(runtime.ports) == {"agent"}
    agent = runtime.ports["agent"]

    with open_relay(agent, 2222) as ssh:
        assert ssh.recv(64).startswith(b"SSH-2.0-OpenSSH")
    with open_relay(agent, 8080) as ide:
        assert healthz(ide, close=True).startswith(b"HTTP/1.1 200 ")

    address = container_address(client, relayed)
    for port in (8080, 2222):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port), timeout=5).close()
    assert httpx.get(f"http://{address}:9000/health", timeout=5).status_code == 200

    status = httpx.get(
        f"http://127.0.0.1:{agent}/status", headers={"Authorization": f"Bearer {TOKEN}"}
    ).json()
    assert status["loopback_only"] is True and status["health"] is None


def test_openssh_logs_in_through_the_relay(provider, relayed, key, tmp_path):
    proxy = tmp_path / "proxy.py"
    proxy.write_text(PROXY_COMMAND)
    agent = provider.status(relayed.workspace_id).ports["agent"]
    result = subprocess.run(
        [
            "ssh",
            *SSH_OPTIONS,
            "-i",
            str(key),
            "-o",
            f"ProxyCommand={sys.executable} {proxy} {agent} {TOKEN}",
            "dev8@workspace",
            "head -c 5000000 /dev/urandom | tee /tmp/sent | sha256sum; sha256sum < /tmp/sent",
        ],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.decode().splitlines()
    assert first.split()[0] == second.split()[0]


def test_the_agent_stays_small_with_many_relays_open(provider, relayed, record_property):
    agent = provider.status(relayed.workspace_id).ports["agent"]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status_url = f"http://127.0.0.1:{agent}/status"
    pid = httpx.get(status_url, headers=headers).json()["agent"]["pid"]
    before = agent_rss_kb(provider, relayed, pid)
    relays = [open_relay(agent, 8080) for _ in range(RELAYS_FOR_MEMORY)]
    try:
        for relay in relays:  # each one carried a request and is still open
            assert healthz(relay, close=False).startswith(b"HTTP/1.1 200 ")
        assert httpx.get(status_url, headers=headers).json()["relays_open"] == RELAYS_FOR_MEMORY
        during = agent_rss_kb(provider, relayed, pid)
    finally:
        for relay in relays:
            relay.close()
    record_property("agent_rss_kb", {"idle": before, f"{RELAYS_FOR_MEMORY} relays": during})
    print(f"agent VmRSS: {before} kB idle, {during} kB with {RELAYS_FOR_MEMORY} relays open")
    assert during <= AGENT_RSS_LIMIT_KB
