"""`dev8 ssh-proxy`, `dev8 port-forward`, `dev8 config-ssh` and `dev8 url` in server mode, as
a user runs them (subprocesses with their own HOME, DEV8_SERVER_URL and DEV8_TOKEN), against
the real server application under uvicorn and its real tunnel endpoint.

No engine: the provider is the fake one of ``tests.fakes``, and the workspace's agent is
``tests.standins.StandInAgent``, which replaces dev8's agent: it answers the agent's relay
upgrade (protocols section 1) and pipes bytes to TCP servers of this test on the loopback,
which stand in for the workspace's sshd and user ports. Local mode's port-forward goes
through the same stand-in agent, in process, with the local service on the fake provider."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from dev8.cli.forward import Forward, listen_all, serve
from dev8.cli.local_access import LocalAccess
from dev8.cli.ssh_proxy import host_key_alias
from dev8.core.environment import AGENT_TOKEN
from dev8.core.workspace import CreateRequest
from dev8.service import accounts
from dev8.service.workspaces import WorkspaceService
from dev8.store.db import sqlite_url
from tests.fakes import FakeAgent, FakeProvider
from tests.integration.helpers import interruptible
from tests.integration.server.live import Api, create, serving
from tests.net import free_port
from tests.standins import LoopThread, StandInAgent, echo, says_first

SSHD_PORT = 2222
PAYLOAD = os.urandom(5 * 1024 * 1024)


# The server, a member and their workspace --------------------------------------------------
@dataclass
class Setup:
    api: Api
    agent: StandInAgent
    token: str
    env: dict[str, str]
    home: Path

    def dev8(
        self, *args: str, check: bool = True, input: bytes = b"", **env: str
    ) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "dev8", *args],
            capture_output=True,
            env={**self.env, **env},
            timeout=120,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"dev8 {args} exited {result.returncode}: {result.stderr!r}")
        return result

    def popen(self, *args: str, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dev8", *args],
            env=self.env,
            preexec_fn=interruptible,  # stopped with SIGINT, as Ctrl-C stops it
            **kwargs,
        )


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2id at its lowest cost (the server's tests do the same): same code, cheaper
    stored parameters."""
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", cheap)
    monkeypatch.setattr(accounts, "_DUMMY_HASH", cheap.hash("not anyone's password"))


@pytest.fixture
def loops() -> Iterator[LoopThread]:
    with LoopThread() as loops:
        yield loops


@pytest.fixture
def agent(loops: LoopThread) -> StandInAgent:
    """Only the ports a test maps are behind it: any other has nothing listening."""
    return StandInAgent(loops, ports={})


@pytest.fixture
def setup(tmp_path: Path, migrated_sqlite: Path, agent: StandInAgent) -> Iterator[Setup]:
    """The server on SQLite only: what is tested here is the CLI, not the database."""
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    provider = FakeProvider()
    provider.agent_url = agent.url
    with serving(tmp_path, sqlite_url(database), provider=provider, agent=FakeAgent()) as api:
        alice = api.member("alice")
        api.settle(alice, create(alice, "w"))
        workspace = api.context.store.find("alice", "w")
        assert workspace is not None
        agent.tokens.add(workspace.secrets[AGENT_TOKEN])
        home = tmp_path / "home"
        home.mkdir()
        token = alice.headers["Authorization"].removeprefix("Bearer ")
        env = {
            **os.environ,
            "HOME": str(home),
            "DEV8_HOME": str(tmp_path / "dev8 data"),  # a space, as on a Mac's Application Support
            "DEV8_SERVER_URL": api.url,
            "DEV8_TOKEN": token,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "COLUMNS": "200",
        }
        yield Setup(api, agent, token, env, home)


def one_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


# ssh-proxy ---------------------------------------------------------------------------------
def test_ssh_proxy_starts_the_workspace_and_relays_5_mb_both_ways(setup: Setup, loops: LoopThread):
    setup.agent.ports[SSHD_PORT] = loops.serve(echo)
    alice = setup.api.client(setup.token)
    setup.api.settle(alice, alice.post("/api/v1/workspaces/w/stop").json())

    proxy = setup.popen(
        "ssh-proxy", "w", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def send() -> None:
        assert proxy.stdin is not None
        proxy.stdin.write(PAYLOAD)
        proxy.stdin.close()  # the end travels as a half-close; the echo's end comes back

    sender = threading.Thread(target=send)
    sender.start()
    received, errors = proxy.communicate(timeout=120)
    sender.join()
    assert proxy.returncode == 0, errors
    assert len(received) == len(PAYLOAD)
    assert hashlib.sha256(received).digest() == hashlib.sha256(PAYLOAD).digest()
    assert errors.decode().startswith("dev8: starting w...")
    assert alice.get("/api/v1/workspaces/w").json()["state"] == "running"


def pin_keys_as_a_first_connection_would(setup: Setup) -> None:
    """`dev8 config-ssh`, then host keys pinned under the entry's alias (the stand-in agent
    reports none, so they are written here as a first connection to a real one writes them)."""
    setup.dev8("config-ssh")
    data = setup.home.parent / "dev8 data" / "ssh"
    alias = host_key_alias((data / "config").read_text(), "w")
    assert alias is not None
    (data / "known_hosts").write_text(f"{alias} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA\n")


def test_ssh_proxy_with_pinned_keys_relays_without_the_cli_framework(
    setup: Setup, loops: LoopThread
):
    """The quick way: ssh runs the ProxyCommand at every connection, and this one loads
    neither Typer nor httpx (``-X importtime`` lists every module imported)."""
    setup.agent.ports[SSHD_PORT] = loops.serve(echo)
    pin_keys_as_a_first_connection_would(setup)
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dev8", "ssh-proxy", "w"],
        input=PAYLOAD,
        capture_output=True,
        env=setup.env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(PAYLOAD).digest()
    imported = {line.split("|")[-1].strip() for line in result.stderr.decode().splitlines()}
    assert "dev8.client.tunnel" in imported
    assert not {"typer", "httpx", "rich"} & imported


def test_ssh_proxy_with_pinned_keys_still_starts_a_stopped_workspace(
    setup: Setup, loops: LoopThread
):
    setup.agent.ports[SSHD_PORT] = loops.serve(echo)
    pin_keys_as_a_first_connection_would(setup)
    alice = setup.api.client(setup.token)
    setup.api.settle(alice, alice.post("/api/v1/workspaces/w/stop").json())
    result = setup.dev8("ssh-proxy", "w", input=b"hello")
    assert result.stdout == b"hello"
    assert result.stderr.decode().startswith("dev8: starting w...")
    assert alice.get("/api/v1/workspaces/w").json()["state"] == "running"


def test_a_refused_tunnel_is_one_line_and_a_failure(setup: Setup):
    """Nothing behind sshd's port: the server refuses the tunnel (502)."""
    refused = setup.dev8("ssh-proxy", "w", check=False)
    assert refused.returncode == 1
    assert one_line(refused.stderr) == (
        f"error: nothing listens on port {SSHD_PORT} in the workspace"
    )

    stranger = setup.dev8("ssh-proxy", "w", check=False, DEV8_TOKEN="dev8_wrong")
    assert stranger.returncode == 1 and one_line(stranger.stderr).startswith("error: ")


# port-forward ------------------------------------------------------------------------------
def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and read everything that comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_port_forward_forwards_two_ports_at_once(setup: Setup, loops: LoopThread):
    web, api_server = loops.serve(says_first(b"web:")), loops.serve(says_first(b"api:"))
    setup.agent.ports.update({8000: web, 3000: api_server})
    local_web, local_api = free_port(), free_port()
    forward = setup.popen(
        "port-forward",
        "w",
        str(local_web) + ":8000",
        f"{local_api}:3000",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert forward.stdout is not None
        lines = [forward.stdout.readline().decode().strip() for _ in range(2)]
        assert lines == [
            f"127.0.0.1:{local_web} → workspace port 8000",
            f"127.0.0.1:{local_api} → workspace port 3000",
        ]
        results: dict[int, bytes] = {}

        def use(index: int, port: int) -> None:
            results[index] = exchange(port, b"x" * 100_000 + str(index).encode())

        users = [
            threading.Thread(target=use, args=(i, local_web if i % 2 else local_api))
            for i in range(6)
        ]
        for user in users:
            user.start()
        for user in users:
            user.join(60)
        for index in range(6):
            prefix = b"web:" if index % 2 else b"api:"
            assert results[index] == prefix + b"x" * 100_000 + str(index).encode()
    finally:
        forward.send_signal(signal.SIGINT)
        _out, errors = forward.communicate(timeout=30)
    assert forward.returncode == 0, errors
    assert b"Traceback" not in errors


def test_port_forward_refuses_a_taken_port_and_a_bad_spec_in_one_line(setup: Setup):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = setup.dev8("port-forward", "w", f"{port}:8000", check=False)
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(f"error: local port {port} is already in use")

    bad = setup.dev8("port-forward", "w", "80:http", check=False)
    assert bad.returncode == 1
    assert one_line(bad.stderr).startswith("error: invalid port forward '80:http'")


def test_a_connection_to_a_silent_port_is_told_and_the_forward_goes_on(setup: Setup):
    local = free_port()
    forward = setup.popen(
        "port-forward", "w", f"{local}:9999", stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert forward.stdout is not None
        forward.stdout.readline()
        with contextlib.suppress(ConnectionResetError):  # if closed with "hello" unread
            assert exchange(local, b"hello") == b""  # closed at once

        assert forward.poll() is None  # still forwarding
    finally:
        forward.send_signal(signal.SIGINT)
        _out, errors = forward.communicate(timeout=30)
    assert "nothing listens on port 9999 in the workspace" in errors.decode()


# config-ssh and url ------------------------------------------------------------------------
def test_config_ssh_through_the_server_and_the_url(setup: Setup):
    result = setup.dev8("config-ssh")
    assert b"added to your account" in result.stdout
    hosts = (setup.home.parent / "dev8 data" / "ssh" / "config").read_text()
    assert "Host dev8.w\n" in hosts
    assert "ssh-proxy w\n" in hosts and "ServerAliveInterval 15" in hosts
    public_key = (setup.home.parent / "dev8 data" / "ssh" / "id_ed25519.pub").read_text()
    me = setup.api.client(setup.token).get("/api/v1/users/me").json()
    assert public_key.strip() in me["ssh_keys"].splitlines()
    assert b"added to your account" not in setup.dev8("config-ssh").stdout  # once

    url = setup.dev8("url", "w").stdout.decode().strip()
    assert url == setup.api.client(setup.token).get("/api/v1/workspaces/w").json()["ide_url"]


# Local mode: the same forwarding through the agent -----------------------------------------
def test_local_mode_forwards_through_the_agent(
    tmp_path: Path, loops: LoopThread, agent: StandInAgent, sqlite_store
):
    provider = FakeProvider()
    provider.agent_url = agent.url
    service = WorkspaceService(
        store=sqlite_store,
        provider=provider,
        owner="me",
        agent=FakeAgent(),  # type: ignore[arg-type]
    )
    workspace = service.up(CreateRequest("w", image="dev8/workspace:test"))
    agent.tokens.add(service.find("w").secrets[AGENT_TOKEN])
    agent.ports[8000] = loops.serve(says_first(b"local:"))
    listeners = listen_all([Forward(free_port(), 8000)], "w")
    stop = threading.Event()
    server = threading.Thread(
        target=serve, args=(listeners, LocalAccess(service).port_opener(workspace), stop)
    )
    server.start()
    try:
        (port,) = [forward.local for forward in listeners.values()]
        assert exchange(port, PAYLOAD) == b"local:" + PAYLOAD
    finally:
        stop.set()
        server.join(10)
        for sock in listeners:
            sock.close()
