"""A member's SSH keys reach their workspaces (real server and database, fake provider and
agent: what is checked is which agents are handed which keys, and when): at each start, and
at once in the running ones when the keys change through the API or the account page."""

from __future__ import annotations

from tests.integration.server.live import create, wait_for

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq3jB8o0d7t8Jm9uFyL1h2n3V4c5b6a7Z8y9X0w1v2u"
LAPTOP, DESKTOP = f"{KEY} alice@laptop", f"{KEY[:-1]}X alice@desktop"


def agent_of(api, client, name: str) -> str:
    """The agent's address (the server's to know: the API does not show it)."""
    workspace_id = client.get(f"/api/v1/workspaces/{name}").json()["id"]
    return api.provider.status(workspace_id).agent_url or ""


def test_changed_keys_reach_running_workspaces_at_once_and_stopped_ones_at_start(api):
    alice = api.member("alice")
    assert alice.patch("/api/v1/users/alice", json={"ssh_keys": LAPTOP}).status_code == 200
    for name, start in (("up", True), ("down", False)):
        api.settle(alice, create(alice, name, start=start))
    up = agent_of(api, alice, "up")
    assert api.agent.ssh_keys[up].strip() == LAPTOP

    both = f"{LAPTOP}\n{DESKTOP}\n"
    assert alice.patch("/api/v1/users/alice", json={"ssh_keys": both}).status_code == 200
    assert api.agent.ssh_keys[up].splitlines() == [LAPTOP, DESKTOP]

    api.settle(alice, alice.post("/api/v1/workspaces/down/start").json())
    down = wait_for(lambda: agent_of(api, alice, "down"), message="down's agent")
    assert api.agent.ssh_keys[down].splitlines() == [LAPTOP, DESKTOP]


def test_keys_removed_on_the_account_page_stop_working_in_running_workspaces(api):
    alice = api.member("alice")
    alice.patch("/api/v1/users/alice", json={"ssh_keys": f"{LAPTOP}\n{DESKTOP}\n"})
    api.settle(alice, create(alice, "web"))
    web = agent_of(api, alice, "web")
    assert len(api.agent.ssh_keys[web].splitlines()) == 2

    assert alice.patch("/api/v1/users/alice", json={"ssh_keys": ""}).status_code == 200
    assert api.agent.ssh_keys[web] == ""


def test_another_members_change_touches_only_their_workspaces(api):
    alice, bob = api.member("alice"), api.member("bob")
    api.settle(alice, create(alice, "web"))
    web = agent_of(api, alice, "web")
    handed = api.agent.ssh_keys[web]
    assert bob.patch("/api/v1/users/bob", json={"ssh_keys": LAPTOP}).status_code == 200
    assert api.agent.ssh_keys[web] == handed
