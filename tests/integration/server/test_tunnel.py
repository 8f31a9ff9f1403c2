"""The tunnel endpoint, ``WebSocket /api/v1/workspaces/{name}/tunnel/{port}``, in the real
application under uvicorn, with the fake provider (no engine) whose workspaces' agent is a
stand-in (``tests.standins.StandInAgent``, replacing dev8's agent) relaying to servers on this
machine's loopback; once through dev8's real agent HTTP server, in this process."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from dev8.agent.httpapi import AgentHTTPServer
from dev8.core.environment import AGENT_TOKEN
from tests.fakes import FakeProvider
from tests.integration.server.live import Api, create
from tests.standins import (
    BANNER,
    LoopThread,
    StandInAgent,
    digest_after_eof,
    echo,
    says_first,
)


@dataclass
class Tunnels:
    api: Api
    agent: StandInAgent
    loops: LoopThread
    tokens: dict[str, str]  # API tokens: alice and bob (members), admin

    def open(self, path: str, who: str | None = "alice") -> ClientConnection:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        url = self.api.url.replace("http://", "ws://") + path
        return ws_connect(url, additional_headers=headers, max_size=None)

    def refused(self, path: str, who: str | None = "alice") -> tuple[int, dict, str]:
        """Status, JSON body and WWW-Authenticate of a refused tunnel."""
        with pytest.raises(InvalidStatus) as refused:
            self.open(path, who)
        answer = refused.value.response
        return (
            answer.status_code,
            json.loads(answer.body),
            answer.headers.get("www-authenticate", ""),
        )


def token_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def running_workspace(api: Api, client: httpx.Client, owner: str, name: str) -> str:
    """Create ``owner``'s workspace ``name`` and wait until it runs; its agent token."""
    api.settle(client, create(client, name))
    workspace = api.context.store.find(owner, name)
    assert workspace is not None and workspace.agent_url == api.provider.agent_url
    return workspace.secrets[AGENT_TOKEN]


@pytest.fixture(scope="module")
def loops() -> Iterator[LoopThread]:
    with LoopThread() as loops:
        yield loops


@pytest.fixture(scope="module")
def module_tunnels(module_api: Api, loops: LoopThread) -> Tunnels:
    """alice's and bob's workspaces ``w``, whose agent is a stand-in."""
    agent = StandInAgent(loops)
    module_api.provider.agent_url = agent.url
    clients = {
        "alice": module_api.member("alice"),
        "bob": module_api.member("bob"),
        "admin": module_api.admin(),
    }
    for owner in ("alice", "bob"):
        agent.tokens.add(running_workspace(module_api, clients[owner], owner, "w"))
    tokens = {who: token_of(client) for who, client in clients.items()}
    return Tunnels(module_api, agent, loops, tokens)


@pytest.fixture
def tunnels(module_tunnels: Tunnels) -> Iterator[Tunnels]:
    yield module_tunnels
    module_tunnels.agent.coalesce, module_tunnels.agent.mode = False, "relay"


def test_bytes_and_half_closes_go_both_ways(tunnels: Tunnels) -> None:
    """The client's EOF (an empty message) reaches the port; its answer and its own EOF
    come back; then the server closes with 1000."""
    port = tunnels.loops.serve(digest_after_eof)
    sent = [os.urandom(1024 * 1024), os.urandom(1000), os.urandom(300_000)]
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
        for data in sent:
            tunnel.send(data)
        tunnel.send(b"")
        received = b""
        while (message := tunnel.recv(10)) != b"":
            received += message
        with pytest.raises(ConnectionClosed) as closed:
            tunnel.recv(10)
    whole = b"".join(sent)
    assert received.decode() == f"{len(whole)} {hashlib.sha256(whole).hexdigest()}"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_what_the_port_says_first_arrives_first(tunnels: Tunnels) -> None:
    tunnels.agent.coalesce = True
    port = tunnels.loops.serve(says_first(BANNER))
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
        assert tunnel.recv(10) == BANNER
        tunnel.send(b"ping")
        assert tunnel.recv(10) == b"ping"


def test_an_admin_reaches_a_members_workspace_with_owner(tunnels: Tunnels) -> None:
    port = tunnels.loops.serve(echo)
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}?owner=alice", "admin") as tunnel:
        tunnel.send(b"admin was here")
        assert tunnel.recv(10) == b"admin was here"


def test_refusals_come_before_the_upgrade(tunnels: Tunnels) -> None:
    port = tunnels.loops.serve(echo)
    path = f"/api/v1/workspaces/w/tunnel/{port}"

    status, body, challenge = tunnels.refused(path, None)
    assert (status, body["error"], challenge) == (401, "unauthorized", "Bearer")
    tunnels.tokens["nobody"] = "not-a-token"
    status, body, _ = tunnels.refused(path, "nobody")
    assert (status, body["error"]) == (401, "unauthorized")

    assert tunnels.refused(f"{path}?owner=alice", "bob")[0] == 404
    assert tunnels.refused(f"/api/v1/workspaces/nope/tunnel/{port}")[0] == 404
    assert tunnels.refused(f"{path}?owner=nobody", "admin")[0] == 404
    for bad in ("0", "65536", "99999999", "ssh"):
        status, body, _ = tunnels.refused(f"/api/v1/workspaces/w/tunnel/{bad}")
        assert (status, body["error"]) == (422, "invalid_input")


def test_nothing_listening_is_a_502(tunnels: Tunnels) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    status, body, _ = tunnels.refused(f"/api/v1/workspaces/w/tunnel/{free}")
    assert (status, body["error"]) == (502, "unreachable")
    assert body["message"] == f"nothing listens on port {free} in the workspace"


def test_a_stopped_workspace_is_a_409(tunnels: Tunnels) -> None:
    port = tunnels.loops.serve(echo)
    alice = tunnels.api.client(tunnels.tokens["alice"])
    tunnels.agent.tokens.add(running_workspace(tunnels.api, alice, "alice", "stopped"))
    stopped = alice.post("/api/v1/workspaces/stopped/stop")
    assert stopped.status_code == 202, stopped.text
    tunnels.api.settle(alice, stopped.json())
    status, body, _ = tunnels.refused(f"/api/v1/workspaces/stopped/tunnel/{port}")
    assert (status, body["error"]) == (409, "conflict")


def test_the_tunnel_rules_are_enforced(tunnels: Tunnels) -> None:
    port = tunnels.loops.serve(echo)
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
        tunnel.send("text")
        with pytest.raises(ConnectionClosed) as closed:
            tunnel.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
        tunnel.send(b"x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            tunnel.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


def test_a_failing_workspace_side_closes_with_1011(tunnels: Tunnels) -> None:
    tunnels.agent.mode = "reset"
    port = tunnels.loops.serve(echo)
    tunnel = tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}")
    with tunnel, pytest.raises(ConnectionClosed) as closed:
        while True:
            tunnel.recv(10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert closed.value.rcvd.reason.startswith("the stream inside the workspace failed")


def test_a_hostile_agent_is_a_502(tunnels: Tunnels) -> None:
    tunnels.agent.mode = "endless"
    port = tunnels.loops.serve(echo)
    status, body, _ = tunnels.refused(f"/api/v1/workspaces/w/tunnel/{port}")
    assert (status, body["error"]) == (502, "unreachable")
    assert "8 KiB" in body["message"]


def test_tunnels_are_audited(tunnels: Tunnels) -> None:
    port = tunnels.loops.serve(echo)
    with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
        tunnel.send(b"x")
        tunnel.recv(10)
    tunnels.refused(f"/api/v1/workspaces/w/tunnel/{port}?owner=alice", "bob")
    entries = tunnels.api.context.store.audit.list(limit=10)
    opened = [e for e in entries if e.message == f"tunnel opened to port {port}"]
    assert [(e.actor, e.method, e.status) for e in opened] == [("alice", "WEBSOCKET", 101)]
    refused = [e for e in entries if e.path.endswith(f"/tunnel/{port}?owner=alice")]
    assert [(e.actor, e.status, e.error) for e in refused] == [("bob", 404, "not_found")]


def test_through_dev8s_agent(make_api, loops: LoopThread) -> None:
    """The same tunnel through dev8's real agent HTTP server instead of the stand-in."""
    agent = AgentHTTPServer(0, "", health=lambda: None, status=dict)
    threading.Thread(target=agent.serve_forever, daemon=True).start()
    try:
        provider = FakeProvider()
        provider.agent_url = f"http://127.0.0.1:{agent.server_address[1]}"
        api = make_api(provider=provider)
        alice = api.member("alice")
        agent.token = running_workspace(api, alice, "alice", "w")
        tunnels = Tunnels(api, StandInAgent(loops), loops, {"alice": token_of(alice)})
        port = loops.serve(digest_after_eof)
        with tunnels.open(f"/api/v1/workspaces/w/tunnel/{port}") as tunnel:
            tunnel.send(b"through the agent")
            tunnel.send(b"")
            answer = tunnel.recv(10)
            assert tunnel.recv(10) == b""
        digest = hashlib.sha256(b"through the agent").hexdigest()
        assert answer.decode() == f"17 {digest}"
    finally:
        agent.shutdown()
        agent.server_close()
