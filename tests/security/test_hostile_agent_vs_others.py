"""Attack (issue 16, item 3): one member's hostile agent must not stop or freeze the server's
work for the other members. Mallory (``aaa-mallory``, observed first: passes go by owner)
replaces her workspace's agent; Alice's workspaces must still be observed, idle-stopped and
operated on promptly.

The server is the real application (uvicorn, reconciler threads, SQLite) with the fake
provider of ``tests.fakes``; Mallory's agent is the stand-in ``tests.security.hostile_agent``
reached through the real ``AgentClient``, everyone else's is the ``FakeAgent``. Both tests
failed before the fix: the 1e999 and wrong-type answers aborted every observation pass at
Mallory's workspace (Alice's idle stop never came), and the trickle held the thread that
also dispatches operations (Alice's create waited for it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from dev8.core.errors import ProviderError
from dev8.service.agent_client import AgentClient
from tests.databases import sqlite_url
from tests.fakes import FakeAgent, FakeProvider
from tests.integration.server.live import Api, create, serving, wait_for
from tests.security.hostile_agent import HostileAgent, answers, trickles

DEADLINE_S = 1.5
PROMPT_S = DEADLINE_S + 5  # a bound for "promptly", not a benchmark


class MalloryRoutedAgent(FakeAgent):
    """The fake agent, except for the addresses in ``real``: those are asked by the real
    client, as the server asks every agent."""

    def __init__(self) -> None:
        super().__init__()
        self.client = AgentClient(timeout=DEADLINE_S)
        self.real: set[str] = set()
        self.others_asked = 0  # status requests to every agent but the hostile ones

    def health(self, agent_url: str | None) -> str | None:
        if agent_url in self.real:
            return self.client.health(agent_url)
        return super().health(agent_url)

    def status(self, agent_url: str | None, token: str) -> dict:
        if agent_url in self.real:
            return self.client.status(agent_url, token)
        self.others_asked += 1
        return super().status(agent_url, token)

    def put_ssh_keys(self, agent_url: str | None, token: str, keys: str) -> int:
        if agent_url in self.real:
            raise ProviderError("the stand-in takes no keys")
        return super().put_ssh_keys(agent_url, token, keys)


@pytest.fixture
def api(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Api]:
    database = tmp_path / "server.db"
    shutil.copy(migrated_sqlite, database)
    with serving(
        tmp_path, sqlite_url(database), provider=FakeProvider(), agent=MalloryRoutedAgent()
    ) as api:
        yield api


def give_mallory(api: Api, hostile: HostileAgent) -> None:
    """Mallory's running workspace, whose agent port now answers with ``hostile``."""
    mallory = api.member("aaa-mallory")
    api.settle(mallory, create(mallory, "evil"))
    workspace = api.context.store.find("aaa-mallory", "evil")
    assert workspace is not None
    api.provider.containers[workspace.id].ports["agent"] = hostile.port
    agent = api.agent
    assert isinstance(agent, MalloryRoutedAgent)
    agent.real.add(hostile.url)


def history(client, name: str) -> list[dict]:
    return client.get(f"/api/v1/workspaces/{name}/operations").json()


@pytest.mark.parametrize(
    "body",
    [b'{"activity": {"last_activity_at": 1e999}}', b'{"activity": [1]}'],
    ids=["1e999", "activity a list"],
)
def test_a_malformed_status_does_not_stop_others_idle_stop(api: Api, body: bytes):
    """Attack: Mallory's agent answers ``last_activity_at: 1e999`` (OverflowError before the
    fix) or a list where an object belongs (AttributeError). Alice's idle workspace is still
    stopped; Mallory's is only marked as not answering."""
    with HostileAgent(answers(body)) as hostile:
        give_mallory(api, hostile)
        alice = api.member("alice")
        api.settle(alice, create(alice, "idle", idle_timeout_s=1))
        stop = wait_for(
            lambda: [op for op in history(alice, "idle") if op["actor"] == "idle-timeout"],
            timeout=PROMPT_S + 2,
            message="Alice's idle stop",
        )
        assert stop[0]["action"] == "stop"
        assert hostile.requests >= 1
        mallory = api.context.store.find("aaa-mallory", "evil")
        assert mallory is not None and mallory.observed_state.value in ("unhealthy", "starting")


def test_a_trickling_agent_does_not_delay_others_operations(api: Api):
    """Attack: Mallory's agent trickles its /status one byte every 0.5 s (before the fix the
    observation pass waited for all of it on the thread that dispatches operations: Alice's
    create took as long as Mallory chose). Alice's create and start finish promptly while the
    trickle goes on, and the passes still observe Alice's other workspace."""
    with HostileAgent(trickles(0.5)) as hostile:
        give_mallory(api, hostile)
        alice = api.member("alice")
        api.settle(alice, create(alice, "other"))
        wait_for(lambda: hostile.requests >= 1, timeout=PROMPT_S, message="the trickle")
        api.settle(alice, create(alice, "w"), timeout=PROMPT_S)
        assert [op["result"] for op in history(alice, "w")] == ["succeeded"] * 2
        # Alice's other workspace's agent reports a health problem: passes record it.
        api.agent.health_reason = "code-server is not answering"
        wait_for(
            lambda: (
                alice.get("/api/v1/workspaces/other").json()["state"] != "running"
                or api.context.store.find("alice", "other").status_message
            ),  # type: ignore[union-attr]
            timeout=PROMPT_S + 2,
            message="Alice's other workspace observed",
        )


def test_a_stalling_agent_delays_only_its_own_observation(api: Api):
    """Attack: Mallory's agent trickles every answer until the client's deadline. Before the
    fix each observation pass waited for its slowest workspace, so Alice's workspace was
    looked at once per Mallory deadline (her idle stop up to a deadline late); now a pass
    hands out the workspaces whose last look has ended, and Alice's is observed at every
    interval (0.2 s here) while Mallory's one observation is still under way."""
    with HostileAgent(trickles(0.5)) as hostile:
        give_mallory(api, hostile)
        alice = api.member("alice")
        api.settle(alice, create(alice, "watched"))
        agent = api.agent
        assert isinstance(agent, MalloryRoutedAgent)
        wait_for(lambda: hostile.requests >= 1, timeout=PROMPT_S, message="the trickle")
        asked_before = agent.others_asked
        # Old behaviour: about one look at Alice per look at Mallory; now several.
        wait_for(
            lambda: agent.others_asked - asked_before >= 2 * hostile.requests + 2,
            timeout=PROMPT_S * 2,
            message="Alice observed more often than Mallory's stalled agent answers",
        )
